// Checks qnnc_argmax, a running maximum over one logit a cycle: on a valid cycle the block
// takes the logit and its index, `start` marking the first logit of a new scan; the registered
// best index is that of the largest logit taken since the last start, the first one on ties.
// One vector line a cycle (see vectors.vh):
//   check valid start logit index expected_best_index
// with the logit as a signed decimal; the best index expected is that after the valid lines
// before this one.
module tb_argmax #(
    parameter LW = 12,
    parameter CW = 4
);
    `include "vectors.vh"

    reg               clk;
    reg               valid;
    reg               start;
    reg signed [LW-1:0] value;
    reg [CW-1:0]      index;
    wire [CW-1:0]     best_index;

    qnnc_argmax #(.LW(LW), .CW(CW)) argmax (
        .clk(clk), .valid(valid), .start(start), .value(value), .index(index),
        .best_index(best_index));

    reg check;
    // Fields read by read_signed and read_unsigned, which check them whole; the ports take
    // their low bits.
    /* verilator lint_off UNUSEDSIGNAL */
    reg signed [63:0] check_field, logit, index_value, expected;
    /* verilator lint_on UNUSEDSIGNAL */
    initial begin
        clk = 1'b0;
        open_vectors;
        while ($fscanf(vectors, "%d", check_field) == 1) begin
            line = line + 1;
            if (!fits_unsigned(check_field, 1))
                reject_vector("check flag not 0 or 1");
            check = check_field[0];
            read_flag(valid);
            read_flag(start);
            read_signed(logit, LW);
            read_unsigned(index_value, CW);
            read_unsigned(expected, CW);
            value = logit[LW-1:0];
            index = index_value[CW-1:0];
            #1;
            if (check) begin
                checked = checked + 1;
                if ({{(64-CW){1'b0}}, best_index} !== expected) begin
                    errors = errors + 1;
                    if (errors <= MAX_SHOWN)
                        $display("mismatch on line %0d: best index %0d, expected %0d", line,
                                 best_index, expected);
                end
            end
            clk = 1'b1;
            #1 clk = 1'b0;
        end
        report;
    end
endmodule
