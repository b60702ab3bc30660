// Multiply-shift requantization, clamp((acc * M + B) >>> shift, lo, hi), with the shift
// arithmetic (rounding towards minus infinity), in five registered stages so that no stage
// holds more than one wide carry chain: the product of registered operands (the shape that
// maps to a DSP block: SB_MAC16, MULT18X18D, DSP48), the offset added, the shift, the two
// comparisons with the clamp's ends, the choice. Latency: 5 cycles. `shift`, `lo` and `hi`
// are constant while a layer runs.
module qnnc_requant #(
    parameter ACCW = 24,
    parameter MW   = 25,
    parameter OW   = 40,
    parameter RQW  = 50,
    parameter SHW  = 6,
    parameter CLW  = 32,
    parameter OUTW = 16
) (
    input  wire                   clk,
    input  wire signed [ACCW-1:0] acc,
    input  wire signed [MW-1:0]   multiplier,
    input  wire signed [OW-1:0]   offset,
    input  wire [SHW-1:0]         shift,
    input  wire signed [CLW-1:0]  lo,
    input  wire signed [CLW-1:0]  hi,
    output reg  signed [OUTW-1:0] value
);
    reg signed [RQW-1:0] product, biased, shifted;
    reg signed [OW-1:0]  offset_held;
    // The product at its own width, ACCW + MW bits: a multiplier no wider than its operands.
    wire signed [ACCW+MW-1:0] exact = acc * multiplier;
    always @(posedge clk) begin
        product <= {{(RQW-ACCW-MW){exact[ACCW+MW-1]}}, exact};
        offset_held <= offset;
    end
    wire signed [RQW-1:0] offset_wide = {{(RQW-OW){offset_held[OW-1]}}, offset_held};
    always @(posedge clk) begin
        biased <= product + offset_wide;
        shifted <= biased >>> shift;
    end
    wire signed [RQW-1:0] lo_wide = {{(RQW-CLW){lo[CLW-1]}}, lo};
    wire signed [RQW-1:0] hi_wide = {{(RQW-CLW){hi[CLW-1]}}, hi};
    reg below, above;
    reg signed [OUTW-1:0] kept;
    always @(posedge clk) begin
        below <= shifted < lo_wide;
        above <= shifted > hi_wide;
        // The clamp range fits OUTW bits, so a value inside it does too.
        kept <= shifted[OUTW-1:0];
        value <= below ? lo_wide[OUTW-1:0] : above ? hi_wide[OUTW-1:0] : kept;
    end
endmodule
