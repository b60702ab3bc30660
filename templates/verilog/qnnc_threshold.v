// Multi-threshold activation as a pipelined binary search. The output code counts the
// thresholds the accumulator reaches (acc >= t on ascending channels, acc <= t on descending
// ones, where batch norm's gamma is negative). A channel's 2^LEVELS - 1 thresholds are sorted
// in the order they are reached, padding (values no accumulator reaches) last, so the count
// is found one bit a level, most significant first: level l compares with the middle
// threshold of the range that the bits found so far (the prefix) leave.
//
// Level l reads its own memory, 2^l thresholds per group, addressed by {group, prefix}. Each
// memory is TW bits wide and deep rather than one word of all thresholds, which would be
// (2^LEVELS - 1) x TW bits wide and a few words deep: the shape that fills block RAM. The
// files hold a word per (group, prefix) for all PEs; this unit keeps its PE's slot, at bit
// SLOT * TW (level 0: SLOT * (TW + 1), with the channel's descending flag above its
// threshold), and synthesis drops the other bits.
//
// `group` is presented one cycle before `acc`. Latency: LEVELS cycles from acc to code.
module qnnc_threshold #(
    parameter ACCW   = 24,
    parameter TW     = 25,
    parameter LEVELS = 4,
    parameter EBITS  = 8,
    parameter PE     = 1,
    parameter SLOT   = 0,
    parameter DEPTH  = 16,
    parameter AW     = 4,
    parameter FILE0  = "thresholds_0.hex",
    parameter FILE1  = "thresholds_1.hex",
    parameter FILE2  = "thresholds_2.hex",
    parameter FILE3  = "thresholds_3.hex"
) (
    input  wire                   clk,
    input  wire [AW-1:0]          group,
    input  wire signed [ACCW-1:0] acc,
    output reg  [EBITS-1:0]       code
);
    reg [AW-1:0] group_held;
    always @(posedge clk)
        group_held <= group;

    genvar l;
    generate
        for (l = 0; l < LEVELS; l = l + 1) begin : g_level
            localparam SW = l == 0 ? TW + 1 : TW;
            // At level l's cycle: the accumulator, the descending flag, the group, and the
            // prefix with this level's bit appended.
            wire signed [ACCW-1:0] level_acc;
            wire descending;
            /* verilator lint_off UNUSEDSIGNAL */
            wire [AW-1:0] level_group;  // the last level addresses no further memory
            /* verilator lint_on UNUSEDSIGNAL */
            wire reached;
            wire [l:0] next_prefix;
            wire [SW-1:0] slot;
            wire [AW+l-1:0] address;
            if (l == 0) begin : g_first
                assign address = group;
                assign level_acc = acc;
                assign descending = slot[TW];
                assign level_group = group_held;
                assign next_prefix = reached;
            end else begin : g_next
                reg signed [ACCW-1:0] acc_held;
                reg [l-1:0] prefix_held;
                reg descending_held;
                reg [AW-1:0] group_next;
                always @(posedge clk) begin
                    acc_held <= g_level[l-1].level_acc;
                    prefix_held <= g_level[l-1].next_prefix;
                    descending_held <= g_level[l-1].descending;
                    group_next <= g_level[l-1].level_group;
                end
                assign address = {g_level[l-1].level_group, g_level[l-1].next_prefix};
                assign level_acc = acc_held;
                assign descending = descending_held;
                assign level_group = group_next;
                assign next_prefix = {prefix_held, reached};
            end
            /* verilator lint_off UNUSEDSIGNAL */
            wire [PE*SW-1:0] word;  // the other PEs' slots
            /* verilator lint_on UNUSEDSIGNAL */
            if (l == 0) begin : g_memory0
                qnnc_rom #(.WIDTH(PE * SW), .DEPTH(DEPTH), .AW(AW), .FILE(FILE0),
                           .KEPT(SW)) memory (
                    .clk(clk), .addr(address), .data(word));
            end else if (l == 1) begin : g_memory1
                qnnc_rom #(.WIDTH(PE * SW), .DEPTH(DEPTH << 1), .AW(AW + 1), .FILE(FILE1),
                           .KEPT(SW)) memory (
                    .clk(clk), .addr(address), .data(word));
            end else if (l == 2) begin : g_memory2
                qnnc_rom #(.WIDTH(PE * SW), .DEPTH(DEPTH << 2), .AW(AW + 2), .FILE(FILE2),
                           .KEPT(SW)) memory (
                    .clk(clk), .addr(address), .data(word));
            end else begin : g_memory3
                qnnc_rom #(.WIDTH(PE * SW), .DEPTH(DEPTH << 3), .AW(AW + 3), .FILE(FILE3),
                           .KEPT(SW)) memory (
                    .clk(clk), .addr(address), .data(word));
            end
            assign slot = word[SLOT*SW +: SW];
            wire signed [TW-1:0] threshold = slot[TW-1:0];
            wire signed [TW-1:0] value = {{(TW-ACCW){level_acc[ACCW-1]}}, level_acc};
            assign reached = descending ? value <= threshold : value >= threshold;
        end
    endgenerate

    wire [LEVELS-1:0] count = g_level[LEVELS-1].next_prefix;
    always @(posedge clk)
        code <= {{(EBITS-LEVELS){1'b0}}, count};
endmodule
