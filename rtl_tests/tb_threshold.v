// Checks qnnc_threshold, a clocked block with the latency L that its header states: the output
// code counts the thresholds the accumulator reaches (acc >= t on ascending channels, acc <= t
// on descending ones), or with a bipolar output is 1 when its threshold is reached. Two
// instances take the same accumulator and flags, one with a table of NT thresholds and one
// with a single threshold. One vector line a cycle (see vectors.vh):
//   check acc descending bipolar t_0 ... t_(NT-1) single_t code_of_table code_of_single
// with the accumulator and thresholds as signed decimals; the codes expected are those of the
// inputs L lines earlier. The bipolar flag is constant while a layer runs: the vectors hold it
// for the L cycles of every input whose code they check.
module tb_threshold #(
    parameter ACCW  = 12,
    parameter TW    = 14,
    parameter NT    = 15,
    parameter EBITS = 8
);
    `include "vectors.vh"

    reg                   clk;
    reg signed [ACCW-1:0] acc;
    reg                   descending;
    reg                   bipolar;
    reg [NT*TW-1:0]       thresholds;
    reg [NT*TW-1:0]       next_thresholds;
    reg [TW-1:0]          single_threshold;
    wire [EBITS-1:0]      code_of_table;
    wire [EBITS-1:0]      code_of_single;

    qnnc_threshold #(.ACCW(ACCW), .TW(TW), .NT(NT), .EBITS(EBITS)) table_instance (
        .clk(clk), .acc(acc), .thresholds(thresholds), .descending(descending),
        .bipolar(bipolar), .code(code_of_table));
    qnnc_threshold #(.ACCW(ACCW), .TW(TW), .NT(1), .EBITS(EBITS)) single_instance (
        .clk(clk), .acc(acc), .thresholds(single_threshold), .descending(descending),
        .bipolar(bipolar), .code(code_of_single));

    integer k;
    reg check;
    // Fields read by read_signed and read_unsigned, which check them whole; the ports take
    // their low bits.
    /* verilator lint_off UNUSEDSIGNAL */
    reg signed [63:0] check_field, acc_value, threshold, expected_table, expected_single;
    /* verilator lint_on UNUSEDSIGNAL */
    initial begin
        clk = 1'b0;
        open_vectors;
        while ($fscanf(vectors, "%d", check_field) == 1) begin
            line = line + 1;
            if (!fits_unsigned(check_field, 1))
                reject_vector("check flag not 0 or 1");
            check = check_field[0];
            read_signed(acc_value, ACCW);
            read_flag(descending);
            read_flag(bipolar);
            for (k = 0; k < NT; k = k + 1) begin
                read_signed(threshold, TW);
                next_thresholds[k*TW +: TW] = threshold[TW-1:0];
            end
            read_signed(threshold, TW);
            read_unsigned(expected_table, EBITS);
            read_unsigned(expected_single, EBITS);
            thresholds = next_thresholds;
            single_threshold = threshold[TW-1:0];
            acc = acc_value[ACCW-1:0];
            #1;
            if (check) begin
                checked = checked + 1;
                if ({{(64-EBITS){1'b0}}, code_of_table} !== expected_table
                        || {{(64-EBITS){1'b0}}, code_of_single} !== expected_single) begin
                    errors = errors + 1;
                    if (errors <= MAX_SHOWN)
                        $display("mismatch on line %0d: code of the table %0d, expected %0d; code of the single threshold %0d, expected %0d",
                                 line, code_of_table, expected_table, code_of_single,
                                 expected_single);
                end
            end
            clk = 1'b1;
            #1 clk = 1'b0;
        end
        report;
    end
endmodule
