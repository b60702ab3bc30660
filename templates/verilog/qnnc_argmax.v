// Index of the largest logit; the first on ties.
module qnnc_argmax #(
    parameter CLASSES = 10,
    parameter LW      = 16,
    parameter CW      = 4
) (
    input  wire [CLASSES*LW-1:0] logits,
    output reg  [CW-1:0]         index
);
    integer c;
    reg signed [LW-1:0] best;
    always @* begin
        index = {CW{1'b0}};
        best = $signed(logits[0 +: LW]);
        for (c = 1; c < CLASSES; c = c + 1)
            if ($signed(logits[c*LW +: LW]) > best) begin
                best = $signed(logits[c*LW +: LW]);
                index = c[CW-1:0];
            end
    end
endmodule
