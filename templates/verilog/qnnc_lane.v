// One multiply lane: a weight code times an activation code, both decoded to signed values.
// Bipolar codes are one bit (1 = +1, 0 = -1); padding lanes (a_valid = 0) contribute 0. With
// one-bit weights the lane is a conditional negation; on bipolar activations that is XNOR
// (+1 when the bits agree, -1 when they differ), summed into a popcount by the adder.
// In MASK mode (average pooling, additions) the lane passes the activation where bit 0 of the
// weight is set and 0 elsewhere, whatever the weights' width or encoding.
module qnnc_lane #(
    parameter WBITS = 4,
    parameter EBITS = 8
) (
    input  wire [WBITS-1:0]       w,
    input  wire                   w_bipolar,
    input  wire                   mask,
    input  wire [EBITS-1:0]       a,
    input  wire                   a_valid,
    input  wire                   a_bipolar,
    output wire signed [WBITS+EBITS+1:0] product
);
    wire signed [EBITS+1:0] a_value =
        !a_valid  ? {(EBITS+2){1'b0}} :
        a_bipolar ? (a[0] ? {{(EBITS+1){1'b0}}, 1'b1} : {(EBITS+2){1'b1}}) :
                    {2'b00, a};
    generate
        if (WBITS == 1) begin : g_binary
            wire unused_w_bipolar = w_bipolar;
            wire signed [WBITS+EBITS+1:0] a_wide = {{WBITS{a_value[EBITS+1]}}, a_value};
            assign product = w[0] ? a_wide : (mask ? {(WBITS+EBITS+2){1'b0}} : -a_wide);
        end else begin : g_multibit
            // Shifted partial products, summed: logic, never a DSP block, whatever the tool,
            // so that DSPs are left to requantization.
            localparam PW = WBITS + EBITS + 2;
            wire signed [WBITS:0] w_value =
                mask      ? {{WBITS{1'b0}}, w[0]} :
                w_bipolar ? (w[0] ? {{WBITS{1'b0}}, 1'b1} : {(WBITS+1){1'b1}})
                          : {w[WBITS-1], w};
            wire signed [PW-1:0] a_wide = {{WBITS{a_value[EBITS+1]}}, a_value};
            reg signed [PW-1:0] sum;
            integer k;
            always @* begin
                sum = {PW{1'b0}};
                for (k = 0; k < WBITS; k = k + 1)
                    if (w_value[k])
                        sum = sum + (a_wide <<< k);
                if (w_value[WBITS])
                    sum = sum - (a_wide <<< WBITS);
            end
            assign product = sum;
        end
    endgenerate
endmodule
