// Checks qnnc_delay: DEPTH registers in a row, all cleared by a synchronous reset, or a wire
// when DEPTH is 0. One vector line a cycle (see vectors.vh):
//   check rst d expected_q
// with d and q as unsigned decimals: q is d of DEPTH lines earlier, or 0 when a reset came
// since.
module tb_delay #(
    parameter WIDTH = 8,
    parameter DEPTH = 1
);
    `include "vectors.vh"

    reg              clk;
    reg              rst;
    reg [WIDTH-1:0]  d;
    wire [WIDTH-1:0] q;

    qnnc_delay #(.WIDTH(WIDTH), .DEPTH(DEPTH)) delay (.clk(clk), .rst(rst), .d(d), .q(q));

    reg check;
    // Fields read by read_signed and read_unsigned, which check them whole; the ports take
    // their low bits.
    /* verilator lint_off UNUSEDSIGNAL */
    reg signed [63:0] check_field, d_value, expected;
    /* verilator lint_on UNUSEDSIGNAL */
    initial begin
        clk = 1'b0;
        open_vectors;
        while ($fscanf(vectors, "%d", check_field) == 1) begin
            line = line + 1;
            if (!fits_unsigned(check_field, 1))
                reject_vector("check flag not 0 or 1");
            check = check_field[0];
            read_flag(rst);
            read_unsigned(d_value, WIDTH);
            read_unsigned(expected, WIDTH);
            d = d_value[WIDTH-1:0];
            #1;
            if (check) begin
                checked = checked + 1;
                if ({{(64-WIDTH){1'b0}}, q} !== expected) begin
                    errors = errors + 1;
                    if (errors <= MAX_SHOWN)
                        $display("mismatch on line %0d: q %0d, expected %0d", line, q, expected);
                end
            end
            clk = 1'b1;
            #1 clk = 1'b0;
        end
        report;
    end
endmodule
