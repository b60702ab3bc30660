// Checks qnnc_rotate: element i of the word goes to lane (i + by) mod LANES. Each vector line
// is
//   check by word expected_rotated
// with the words as unsigned decimals (element i at bits [i*EW +: EW]).
module tb_rotate #(
    parameter LANES      = 4,
    parameter LANES_LOG2 = 2,
    parameter EW         = 8,
    parameter BW         = 2
);
    `include "vectors.vh"

    reg  [LANES*EW-1:0] word;
    reg  [BW-1:0]       by;
    wire [LANES*EW-1:0] rotated;

    qnnc_rotate #(.LANES(LANES), .LANES_LOG2(LANES_LOG2), .EW(EW), .BW(BW)) rotate (
        .word(word), .by(by), .rotated(rotated));

    reg check;
    // Fields read by read_unsigned, which checks them whole; the ports take their low bits.
    /* verilator lint_off UNUSEDSIGNAL */
    reg signed [63:0] check_field, by_value, word_value, expected;
    /* verilator lint_on UNUSEDSIGNAL */
    initial begin
        open_vectors;
        while ($fscanf(vectors, "%d", check_field) == 1) begin
            line = line + 1;
            if (!fits_unsigned(check_field, 1))
                reject_vector("check flag not 0 or 1");
            check = check_field[0];
            read_unsigned(by_value, BW);
            read_unsigned(word_value, LANES*EW);
            read_unsigned(expected, LANES*EW);
            by = by_value[BW-1:0];
            word = word_value[LANES*EW-1:0];
            #1;
            if (check) begin
                checked = checked + 1;
                if ({{(64-LANES*EW){1'b0}}, rotated} !== expected) begin
                    errors = errors + 1;
                    if (errors <= MAX_SHOWN)
                        $display("mismatch on line %0d: by %0d word %0d: %0d, expected %0d",
                                 line, by_value, word_value, rotated, expected);
                end
            end
        end
        report;
    end
endmodule
