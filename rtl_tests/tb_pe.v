// Checks qnnc_pe: SIMD lanes (qnnc_lane) whose products are registered, an adder tree with
// ADDER_STAGES registered levels and an accumulator. The sum of the operands of line c reaches
// the accumulator 1 + ADDER_STAGES lines later: on that line, `accumulate` adds it to the
// accumulator at the clock edge, or with `first` replaces the accumulator by it. One vector
// line a cycle (see vectors.vh):
//   check w_bipolar a_bipolar accumulate first w_0 a_0 a_valid_0 ... w_(SIMD-1) a_(SIMD-1)
//       a_valid_(SIMD-1) expected_acc
// with the codes as unsigned decimals and the accumulator as a signed decimal; the
// accumulator expected is that after the clock edges of the lines before.
module tb_pe #(
    parameter SIMD         = 4,
    parameter SIMD_LOG2    = 2,
    parameter WBITS        = 4,
    parameter EBITS        = 8,
    parameter ACCW         = 24,
    parameter ADDER_STAGES = 1
);
    `include "vectors.vh"

    reg                    clk;
    reg [SIMD*WBITS-1:0]   w;
    reg                    w_bipolar;
    reg [SIMD*EBITS-1:0]   a;
    reg [SIMD-1:0]         a_valid;
    reg                    a_bipolar;
    reg                    accumulate;
    reg                    first;
    wire signed [ACCW-1:0] acc;
    reg [SIMD*WBITS-1:0]   next_w;
    reg [SIMD*EBITS-1:0]   next_a;
    reg [SIMD-1:0]         next_a_valid;

    qnnc_pe #(.SIMD(SIMD), .SIMD_LOG2(SIMD_LOG2), .WBITS(WBITS), .EBITS(EBITS), .ACCW(ACCW),
              .ADDER_STAGES(ADDER_STAGES)) pe (
        .clk(clk), .w(w), .w_bipolar(w_bipolar), .mask(1'b0), .a(a), .a_valid(a_valid),
        .a_bipolar(a_bipolar), .accumulate(accumulate), .first(first), .acc(acc));

    integer j;
    reg check;
    reg valid_flag;
    // Fields read by read_signed and read_unsigned, which check them whole; the ports take
    // their low bits.
    /* verilator lint_off UNUSEDSIGNAL */
    reg signed [63:0] check_field, w_code, a_code, expected;
    /* verilator lint_on UNUSEDSIGNAL */
    initial begin
        clk = 1'b0;
        open_vectors;
        while ($fscanf(vectors, "%d", check_field) == 1) begin
            line = line + 1;
            if (!fits_unsigned(check_field, 1))
                reject_vector("check flag not 0 or 1");
            check = check_field[0];
            read_flag(w_bipolar);
            read_flag(a_bipolar);
            read_flag(accumulate);
            read_flag(first);
            for (j = 0; j < SIMD; j = j + 1) begin
                read_unsigned(w_code, WBITS);
                read_unsigned(a_code, EBITS);
                read_flag(valid_flag);
                next_w[j*WBITS +: WBITS] = w_code[WBITS-1:0];
                next_a[j*EBITS +: EBITS] = a_code[EBITS-1:0];
                next_a_valid[j] = valid_flag;
            end
            read_signed(expected, ACCW);
            w = next_w;
            a = next_a;
            a_valid = next_a_valid;
            #1;
            if (check) begin
                checked = checked + 1;
                if ({{(64-ACCW){acc[ACCW-1]}}, acc} !== expected) begin
                    errors = errors + 1;
                    if (errors <= MAX_SHOWN)
                        $display("mismatch on line %0d: acc %0d, expected %0d", line, acc,
                                 expected);
                end
            end
            clk = 1'b1;
            #1 clk = 1'b0;
        end
        report;
    end
endmodule
