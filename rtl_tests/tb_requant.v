// Checks qnnc_requant: clamp((acc * multiplier + offset) >>> shift, lo, hi), with an arithmetic
// shift (rounding towards minus infinity), as an OUTW-bit value. Each vector line is
//   acc multiplier offset shift lo hi expected_value
// all as signed decimals.
module tb_requant #(
    parameter ACCW = 16,
    parameter MW   = 16,
    parameter OW   = 32,
    parameter RQW  = 40,
    parameter OUTW = 16
);
    `include "vectors.vh"

    reg signed [ACCW-1:0]  acc;
    reg signed [MW-1:0]    multiplier;
    reg signed [OW-1:0]    offset;
    reg [5:0]              shift;
    reg signed [31:0]      lo;
    reg signed [31:0]      hi;
    wire signed [OUTW-1:0] value;

    qnnc_requant #(.ACCW(ACCW), .MW(MW), .OW(OW), .RQW(RQW), .OUTW(OUTW)) requant (
        .acc(acc), .multiplier(multiplier), .offset(offset), .shift(shift), .lo(lo), .hi(hi),
        .value(value));

    reg signed [63:0] acc_value, multiplier_value, offset_value, shift_value, lo_value, hi_value;
    reg signed [63:0] expected;
    initial begin
        open_vectors;
        while ($fscanf(vectors, "%d", acc_value) == 1) begin
            line = line + 1;
            if ($fscanf(vectors, "%d %d %d %d %d %d", multiplier_value, offset_value, shift_value,
                        lo_value, hi_value, expected) != 6)
                reject_vector("missing fields");
            if (!fits_signed(acc_value, ACCW) || !fits_signed(multiplier_value, MW)
                    || !fits_signed(offset_value, OW) || !fits_unsigned(shift_value, 6)
                    || !fits_signed(lo_value, 32) || !fits_signed(hi_value, 32))
                reject_vector("operand wider than its port");
            acc = acc_value[ACCW-1:0];
            multiplier = multiplier_value[MW-1:0];
            offset = offset_value[OW-1:0];
            shift = shift_value[5:0];
            lo = lo_value[31:0];
            hi = hi_value[31:0];
            #1;
            checked = checked + 1;
            if ({{(64-OUTW){value[OUTW-1]}}, value} !== expected) begin
                errors = errors + 1;
                if (errors <= MAX_SHOWN)
                    $display("mismatch on line %0d: acc %0d multiplier %0d offset %0d shift %0d lo %0d hi %0d: value %0d, expected %0d",
                             line, acc_value, multiplier_value, offset_value, shift_value,
                             lo_value, hi_value, value, expected);
            end
        end
        report;
    end
endmodule
