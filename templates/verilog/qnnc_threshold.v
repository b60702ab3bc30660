// Multi-threshold activation in two registered stages: the comparisons, then their count.
// The output code counts the thresholds the accumulator reaches (acc >= t for ascending
// channels, acc <= t for descending ones, where batch norm's gamma is negative). Unused
// thresholds are padded with values no accumulator reaches. A bipolar output is the single
// threshold's outcome as one bit. Latency: 2 cycles.
module qnnc_threshold #(
    parameter ACCW  = 24,
    parameter TW    = 25,
    parameter NT    = 15,
    parameter EBITS = 8
) (
    input  wire                   clk,
    input  wire signed [ACCW-1:0] acc,
    input  wire [NT*TW-1:0]       thresholds,
    input  wire                   descending,
    input  wire                   bipolar,
    output reg  [EBITS-1:0]       code
);
    wire signed [TW-1:0] value = {{(TW-ACCW){acc[ACCW-1]}}, acc};
    reg [NT-1:0] reached;
    integer k;
    always @(posedge clk)
        for (k = 0; k < NT; k = k + 1)
            reached[k] <= descending ? (value <= $signed(thresholds[k*TW +: TW]))
                                     : (value >= $signed(thresholds[k*TW +: TW]));

    reg [EBITS-1:0] count;
    always @* begin
        count = {EBITS{1'b0}};
        for (k = 0; k < NT; k = k + 1)
            count = count + {{(EBITS-1){1'b0}}, reached[k]};
    end
    always @(posedge clk)
        code <= bipolar ? {{(EBITS-1){1'b0}}, |reached} : count;
endmodule
