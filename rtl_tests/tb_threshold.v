// Checks qnnc_threshold: the output code counts the thresholds the accumulator reaches
// (acc >= t on ascending channels, acc <= t on descending ones), or with a bipolar output is
// 1 when any is reached. Two instances: one with NT thresholds and one with a single threshold.
// Each vector line names the instance by its threshold count:
//   nt acc descending bipolar expected_code t_0 ... t_(nt-1)
// with the accumulator and thresholds as signed decimals.
module tb_threshold #(
    parameter ACCW  = 12,
    parameter TW    = 14,
    parameter NT    = 15,
    parameter EBITS = 8
);
    `include "vectors.vh"

    reg signed [ACCW-1:0] acc;
    reg                   descending;
    reg                   bipolar;
    reg [NT*TW-1:0]       thresholds;
    reg [NT*TW-1:0]       next_thresholds;
    reg [TW-1:0]          single_threshold;
    wire [EBITS-1:0]      code_of_table;
    wire [EBITS-1:0]      code_of_single;

    qnnc_threshold #(.ACCW(ACCW), .TW(TW), .NT(NT), .EBITS(EBITS)) table_instance (
        .acc(acc), .thresholds(thresholds), .descending(descending), .bipolar(bipolar),
        .code(code_of_table));
    qnnc_threshold #(.ACCW(ACCW), .TW(TW), .NT(1), .EBITS(EBITS)) single_instance (
        .acc(acc), .thresholds(single_threshold), .descending(descending), .bipolar(bipolar),
        .code(code_of_single));

    integer nt, k;
    reg signed [63:0] acc_value, descending_flag, bipolar_flag, expected, threshold;
    reg [EBITS-1:0] code;
    initial begin
        open_vectors;
        while ($fscanf(vectors, "%d", nt) == 1) begin
            line = line + 1;
            if ($fscanf(vectors, "%d %d %d %d", acc_value, descending_flag, bipolar_flag,
                        expected) != 4)
                reject_vector("missing fields");
            if (nt != NT && nt != 1)
                reject_vector("no instance of this threshold count");
            if (!fits_signed(acc_value, ACCW))
                reject_vector("accumulator wider than ACCW");
            if (!fits_unsigned(descending_flag, 1) || !fits_unsigned(bipolar_flag, 1))
                reject_vector("flag not 0 or 1");
            for (k = 0; k < nt; k = k + 1) begin
                if ($fscanf(vectors, "%d", threshold) != 1)
                    reject_vector("missing threshold");
                if (!fits_signed(threshold, TW))
                    reject_vector("threshold wider than TW");
                if (nt == 1)
                    single_threshold = threshold[TW-1:0];
                else
                    next_thresholds[k*TW +: TW] = threshold[TW-1:0];
            end
            thresholds = next_thresholds;
            acc = acc_value[ACCW-1:0];
            descending = descending_flag[0];
            bipolar = bipolar_flag[0];
            #1;
            code = nt == 1 ? code_of_single : code_of_table;
            checked = checked + 1;
            if ({{(64-EBITS){1'b0}}, code} !== expected) begin
                errors = errors + 1;
                if (errors <= MAX_SHOWN)
                    $display("mismatch on line %0d: NT %0d acc %0d descending %0d bipolar %0d: code %0d, expected %0d",
                             line, nt, acc_value, descending_flag, bipolar_flag, code, expected);
            end
        end
        report;
    end
endmodule
