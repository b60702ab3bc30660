// DEPTH registers in a row (a wire when DEPTH is 0), cleared by reset: the side information
// that travels beside the datapath's pipeline stages.
module qnnc_delay #(
    parameter WIDTH = 1,
    parameter DEPTH = 1
) (
    input  wire             clk,
    input  wire             rst,
    input  wire [WIDTH-1:0] d,
    output wire [WIDTH-1:0] q
);
    generate
        if (DEPTH == 0) begin : g_wire
            wire unused = &{1'b0, clk, rst};
            assign q = d;
        end else if (DEPTH == 1) begin : g_register
            reg [WIDTH-1:0] stage;
            always @(posedge clk)
                stage <= rst ? {WIDTH{1'b0}} : d;
            assign q = stage;
        end else begin : g_registers
            reg [WIDTH*DEPTH-1:0] stages;
            always @(posedge clk)
                stages <= rst ? {(WIDTH*DEPTH){1'b0}} : {stages[WIDTH*(DEPTH-1)-1:0], d};
            assign q = stages[WIDTH*DEPTH-1 -: WIDTH];
        end
    endgenerate
endmodule
