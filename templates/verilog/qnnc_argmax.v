// Argmax as a running maximum: one logit a cycle; `start` marks the first. Ties keep the
// first index. The index is registered with the maximum.
module qnnc_argmax #(
    parameter LW = 16,
    parameter CW = 4
) (
    input  wire                 clk,
    input  wire                 valid,
    input  wire                 start,
    input  wire signed [LW-1:0] value,
    input  wire [CW-1:0]        index,
    output reg  [CW-1:0]        best_index
);
    reg signed [LW-1:0] best;
    always @(posedge clk)
        if (valid && (start || value > best)) begin
            best <= value;
            best_index <= index;
        end
endmodule
