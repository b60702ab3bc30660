// Checks qnnc_requant, a clocked block with the latency L that its header states:
// clamp((acc * multiplier + offset) >>> shift, lo, hi), with an arithmetic shift (rounding
// towards minus infinity), as an OUTW-bit value. One vector line a cycle (see vectors.vh):
//   check acc multiplier offset shift lo hi expected_value
// all as signed decimals; the value expected is that of the inputs L lines earlier. The shift
// and the clamp are constant while a layer runs: the vectors hold them for the L cycles of
// every input whose value they check.
module tb_requant #(
    parameter ACCW = 16,
    parameter MW   = 16,
    parameter OW   = 32,
    parameter RQW  = 40,
    parameter SHW  = 6,
    parameter CLW  = 24,
    parameter OUTW = 16
);
    `include "vectors.vh"

    reg                    clk;
    reg signed [ACCW-1:0]  acc;
    reg signed [MW-1:0]    multiplier;
    reg signed [OW-1:0]    offset;
    reg [SHW-1:0]          shift;
    reg signed [CLW-1:0]   lo;
    reg signed [CLW-1:0]   hi;
    wire signed [OUTW-1:0] value;

    qnnc_requant #(.ACCW(ACCW), .MW(MW), .OW(OW), .RQW(RQW), .SHW(SHW), .CLW(CLW), .OUTW(OUTW))
        requant (
            .clk(clk), .acc(acc), .multiplier(multiplier), .offset(offset), .shift(shift),
            .lo(lo), .hi(hi), .value(value));

    reg check;
    // Fields read by read_signed and read_unsigned, which check them whole; the ports take
    // their low bits.
    /* verilator lint_off UNUSEDSIGNAL */
    reg signed [63:0] check_field, acc_value, multiplier_value, offset_value, shift_value;
    reg signed [63:0] lo_value, hi_value, expected;
    /* verilator lint_on UNUSEDSIGNAL */
    initial begin
        clk = 1'b0;
        open_vectors;
        while ($fscanf(vectors, "%d", check_field) == 1) begin
            line = line + 1;
            if (!fits_unsigned(check_field, 1))
                reject_vector("check flag not 0 or 1");
            check = check_field[0];
            read_signed(acc_value, ACCW);
            read_signed(multiplier_value, MW);
            read_signed(offset_value, OW);
            read_unsigned(shift_value, SHW);
            read_signed(lo_value, CLW);
            read_signed(hi_value, CLW);
            read_signed(expected, OUTW);
            acc = acc_value[ACCW-1:0];
            multiplier = multiplier_value[MW-1:0];
            offset = offset_value[OW-1:0];
            shift = shift_value[SHW-1:0];
            lo = lo_value[CLW-1:0];
            hi = hi_value[CLW-1:0];
            #1;
            if (check) begin
                checked = checked + 1;
                if ({{(64-OUTW){value[OUTW-1]}}, value} !== expected) begin
                    errors = errors + 1;
                    if (errors <= MAX_SHOWN)
                        $display("mismatch on line %0d: value %0d, expected %0d", line, value,
                                 expected);
                end
            end
            clk = 1'b1;
            #1 clk = 1'b0;
        end
        report;
    end
endmodule
