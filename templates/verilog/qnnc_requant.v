// Multiply-shift requantization: clamp((acc * M + B) >>> shift, lo, hi), the shift
// arithmetic (rounding towards minus infinity).
module qnnc_requant #(
    parameter ACCW = 24,
    parameter MW   = 25,
    parameter OW   = 40,
    parameter RQW  = 50,
    parameter OUTW = 16
) (
    input  wire signed [ACCW-1:0] acc,
    input  wire signed [MW-1:0]   multiplier,
    input  wire signed [OW-1:0]   offset,
    input  wire [5:0]             shift,
    input  wire signed [31:0]     lo,
    input  wire signed [31:0]     hi,
    output wire signed [OUTW-1:0] value
);
    wire signed [RQW-1:0] scaled =
        {{(RQW-ACCW){acc[ACCW-1]}}, acc} * {{(RQW-MW){multiplier[MW-1]}}, multiplier}
        + {{(RQW-OW){offset[OW-1]}}, offset};
    wire signed [RQW-1:0] shifted = scaled >>> shift;
    wire signed [RQW-1:0] lo_wide = {{(RQW-32){lo[31]}}, lo};
    wire signed [RQW-1:0] hi_wide = {{(RQW-32){hi[31]}}, hi};
    /* verilator lint_off UNUSEDSIGNAL */
    // The clamp range fits OUTW bits, so the upper bits only repeat the sign.
    wire signed [RQW-1:0] clamped = shifted < lo_wide ? lo_wide :
                                    shifted > hi_wide ? hi_wide : shifted;
    /* verilator lint_on UNUSEDSIGNAL */
    assign value = clamped[OUTW-1:0];
endmodule
