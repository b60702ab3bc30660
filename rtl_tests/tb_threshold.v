// Checks qnnc_threshold, a clocked block with the latency L (from the accumulator) that its
// header states: the output code counts the thresholds of the channel that the accumulator
// reaches (acc >= t on ascending channels, acc <= t on descending ones). PE instances, one a
// slot, read the level memories thresholds_<l>.hex that the test writes in the working
// directory. One vector line a cycle (see vectors.vh):
//   check group acc code_0 ... code_(PE-1)
// The testbench presents the group on its line's cycle and the accumulator one cycle later,
// as the block expects, so the codes expected are those of the line L + 1 lines earlier.
module tb_threshold #(
    parameter ACCW   = 12,
    parameter TW     = 14,
    parameter LEVELS = 4,
    parameter EBITS  = 8,
    parameter PE     = 2,
    parameter DEPTH  = 5,
    parameter AW     = 3
);
    `include "vectors.vh"

    reg                   clk;
    reg [AW-1:0]          group;
    reg signed [ACCW-1:0] acc;
    reg signed [ACCW-1:0] pending_acc;  // this line's, presented on the next
    wire [PE*EBITS-1:0]   codes;

    genvar i;
    generate
        for (i = 0; i < PE; i = i + 1) begin : g_slot
            qnnc_threshold #(.ACCW(ACCW), .TW(TW), .LEVELS(LEVELS), .EBITS(EBITS), .PE(PE),
                             .SLOT(i), .DEPTH(DEPTH), .AW(AW)) unit (
                .clk(clk), .group(group), .acc(acc), .code(codes[i*EBITS +: EBITS]));
        end
    endgenerate

    integer k;
    reg check;
    // Fields read by read_signed and read_unsigned, which check them whole; the ports take
    // their low bits.
    /* verilator lint_off UNUSEDSIGNAL */
    reg signed [63:0] check_field, group_value, acc_value, expected;
    /* verilator lint_on UNUSEDSIGNAL */
    reg [PE*EBITS-1:0] expected_codes;
    initial begin
        clk = 1'b0;
        pending_acc = {ACCW{1'b0}};
        open_vectors;
        while ($fscanf(vectors, "%d", check_field) == 1) begin
            line = line + 1;
            if (!fits_unsigned(check_field, 1))
                reject_vector("check flag not 0 or 1");
            check = check_field[0];
            read_unsigned(group_value, AW);
            read_signed(acc_value, ACCW);
            for (k = 0; k < PE; k = k + 1) begin
                read_unsigned(expected, EBITS);
                expected_codes[k*EBITS +: EBITS] = expected[EBITS-1:0];
            end
            group = group_value[AW-1:0];
            acc = pending_acc;
            pending_acc = acc_value[ACCW-1:0];
            #1;
            if (check) begin
                checked = checked + 1;
                if (codes !== expected_codes) begin
                    errors = errors + 1;
                    if (errors <= MAX_SHOWN)
                        $display("mismatch on line %0d: codes %h, expected %h", line, codes,
                                 expected_codes);
                end
            end
            clk = 1'b1;
            #1 clk = 1'b0;
        end
        report;
    end
endmodule
