// The processing element of qnnc at one precision, for `qnnc calibrate`: qnnc_pe with its
// codes' kinds fixed (bipolar at one bit), so that synthesis keeps only the arithmetic a
// network of that precision uses.
module qnnc_calibration_pe #(
    parameter SIMD         = 16,
    parameter SIMD_LOG2    = 4,
    parameter WBITS        = 4,
    parameter EBITS        = 4,
    parameter ACCW         = 24,
    parameter ADDER_STAGES = 2
) (
    input  wire                    clk,
    input  wire [SIMD*WBITS-1:0]   w,
    input  wire [SIMD*EBITS-1:0]   a,
    input  wire [SIMD-1:0]         a_valid,
    input  wire                    accumulate,
    input  wire                    first,
    output wire signed [ACCW-1:0]  acc
);
    qnnc_pe #(
        .SIMD(SIMD),
        .SIMD_LOG2(SIMD_LOG2),
        .WBITS(WBITS),
        .EBITS(EBITS),
        .ACCW(ACCW),
        .ADDER_STAGES(ADDER_STAGES)
    ) pe (
        .clk(clk),
        .w(w),
        .w_bipolar(WBITS == 1),
        .a(a),
        .a_valid(a_valid),
        .a_bipolar(EBITS == 1),
        .accumulate(accumulate),
        .first(first),
        .acc(acc)
    );
endmodule
