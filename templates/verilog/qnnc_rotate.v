// Rotates a word of LANES elements of EW bits towards the higher lanes by `by` places: element
// i goes to lane (i + by) mod LANES, through LANES_LOG2 stages of 2:1 multiplexers. BW is the
// width of `by`: LANES_LOG2, or 1 for a single lane.
module qnnc_rotate #(
    parameter LANES      = 16,
    parameter LANES_LOG2 = 4,
    parameter EW         = 8,
    parameter BW         = 4
) (
    input  wire [LANES*EW-1:0] word,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire [BW-1:0]       by,  // a single lane does not rotate
    /* verilator lint_on UNUSEDSIGNAL */
    output wire [LANES*EW-1:0] rotated
);
    genvar s;
    generate
        for (s = 0; s <= LANES_LOG2; s = s + 1) begin : g_stage
            wire [LANES*EW-1:0] value;
            if (s == 0) begin : g_input
                assign value = word;
            end else begin : g_step
                localparam BY = 1 << (s - 1);
                wire [LANES*EW-1:0] prev = g_stage[s-1].value;
                assign value = by[s-1]
                    ? {prev[(LANES-BY)*EW-1:0], prev[LANES*EW-1 -: BY*EW]}
                    : prev;
            end
        end
    endgenerate
    assign rotated = g_stage[LANES_LOG2].value;
endmodule
