// A processing element: SIMD lanes whose products are registered, an adder tree with
// ADDER_STAGES registered levels (spread evenly over its SIMD_LOG2 levels), and an accumulator
// that starts a new dot product when `first` is set. Latency from the operands to the sum is
// 1 + ADDER_STAGES cycles; the accumulator adds the sum at the end of that cycle.
module qnnc_pe #(
    parameter SIMD         = 16,
    parameter SIMD_LOG2    = 4,
    parameter WBITS        = 4,
    parameter EBITS        = 8,
    parameter ACCW         = 24,
    parameter ADDER_STAGES = 2
) (
    input  wire                    clk,
    input  wire [SIMD*WBITS-1:0]   w,
    input  wire                    w_bipolar,
    input  wire                    mask,
    input  wire [SIMD*EBITS-1:0]   a,
    input  wire [SIMD-1:0]         a_valid,
    input  wire                    a_bipolar,
    input  wire                    accumulate,
    input  wire                    first,
    output reg  signed [ACCW-1:0]  acc
);
    localparam PW = WBITS + EBITS + 2;
    localparam SW = PW + SIMD_LOG2;

    reg [SIMD*SW-1:0] products;
    genvar j, k, n;
    generate
        for (j = 0; j < SIMD; j = j + 1) begin : g_lane
            wire signed [PW-1:0] product;
            qnnc_lane #(.WBITS(WBITS), .EBITS(EBITS)) lane (
                .w(w[j*WBITS +: WBITS]),
                .w_bipolar(w_bipolar),
                .mask(mask),
                .a(a[j*EBITS +: EBITS]),
                .a_valid(a_valid[j]),
                .a_bipolar(a_bipolar),
                .product(product)
            );
            if (SW > PW) begin : g_extend
                always @(posedge clk)
                    products[j*SW +: SW] <= {{(SW-PW){product[PW-1]}}, product};
            end else begin : g_same
                always @(posedge clk)
                    products[j*SW +: SW] <= product;
            end
        end

        for (k = 0; k <= SIMD_LOG2; k = k + 1) begin : g_level
            wire [(SIMD>>k)*SW-1:0] values;
            if (k == 0) begin : g_leaves
                assign values = products;
            end else begin : g_sums
                wire [(SIMD>>k)*SW-1:0] sums;
                for (n = 0; n < (SIMD >> k); n = n + 1) begin : g_node
                    assign sums[n*SW +: SW] = g_level[k-1].values[2*n*SW +: SW]
                                            + g_level[k-1].values[(2*n+1)*SW +: SW];
                end
                if (((k * ADDER_STAGES) % SIMD_LOG2) < ADDER_STAGES) begin : g_register
                    reg [(SIMD>>k)*SW-1:0] held;
                    always @(posedge clk)
                        held <= sums;
                    assign values = held;
                end else begin : g_wire
                    assign values = sums;
                end
            end
        end

        wire signed [SW-1:0] sum = g_level[SIMD_LOG2].values;
        wire signed [ACCW-1:0] sum_wide;
        if (ACCW > SW) begin : g_widen
            assign sum_wide = {{(ACCW-SW){sum[SW-1]}}, sum};
        end else begin : g_fits
            assign sum_wide = sum;
        end
    endgenerate

    initial acc = {ACCW{1'b0}};
    always @(posedge clk)
        if (accumulate)
            acc <= first ? sum_wide : acc + sum_wide;
endmodule
