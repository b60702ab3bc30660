// A processing element: SIMD lanes, their sum, and an accumulator that starts a new dot
// product when `first` is set.
module qnnc_pe #(
    parameter SIMD  = 16,
    parameter WBITS = 4,
    parameter EBITS = 8,
    parameter ACCW  = 24
) (
    input  wire                    clk,
    input  wire                    enable,
    input  wire                    first,
    input  wire [SIMD*WBITS-1:0]   w,
    input  wire                    w_bipolar,
    input  wire [SIMD*EBITS-1:0]   a,
    input  wire [SIMD-1:0]         a_valid,
    input  wire                    a_bipolar,
    output reg  signed [ACCW-1:0]  acc
);
    localparam PW = WBITS + EBITS + 2;
    wire signed [PW-1:0] products [0:SIMD-1];
    genvar j;
    generate
        for (j = 0; j < SIMD; j = j + 1) begin : g_lane
            qnnc_lane #(.WBITS(WBITS), .EBITS(EBITS)) lane (
                .w(w[j*WBITS +: WBITS]),
                .w_bipolar(w_bipolar),
                .a(a[j*EBITS +: EBITS]),
                .a_valid(a_valid[j]),
                .a_bipolar(a_bipolar),
                .product(products[j])
            );
        end
    endgenerate

    reg signed [ACCW-1:0] sum;
    integer k;
    always @* begin
        sum = {ACCW{1'b0}};
        for (k = 0; k < SIMD; k = k + 1)
            sum = sum + {{(ACCW-PW){products[k][PW-1]}}, products[k]};
    end

    initial acc = {ACCW{1'b0}};
    always @(posedge clk)
        if (enable)
            acc <= first ? sum : acc + sum;
endmodule
