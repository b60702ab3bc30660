// The accelerator: one PE array shared by all layers in turn, walked by a controller that
// reads a table of layer descriptors (its layout in qnnc_layout.vh, written by the compiler).
//
// Pixels stream into the pixel buffer, SIMD to a row. Each layer reads its source (the pixel
// buffer for the first layer, else a region of the activation memory) and writes its output
// into another region; the compiler allocates the regions by liveness and names them in the
// descriptor (a chain alternates two regions). A convolution's windows are built by qnnc_loader into one of
// the BANKS banks of the window memory while the PE array computes earlier pixels from the
// others; a dense layer (its window is its whole input) reads its source rows directly. Every
// memory has one write port and a registered read port.
//
// The datapath is a pipeline: issue (addresses) -> operands read -> operands registered ->
// lane products -> adder tree (ADDER_STAGES registers) -> accumulator -> thresholds or
// multiply-shift (POST stages) -> max-pool -> packing into rows -> activation memory write. The last layer's results are the logits;
// their argmax is a running maximum, one logit a cycle. Control uses counters and additions
// of strides the compiler precomputed; there are no run-time multiplies.
//
// Cycles: see `src/schedule`, which predicts them exactly.
`include "qnnc_layout.vh"
module qnnc_core #(
    parameter PE           = 8,
    parameter SIMD         = 16,
    parameter SIMD_LOG2    = 4,
    parameter WBITS        = 4,
    parameter ABITS        = 4,
    parameter EBITS        = 8,
    parameter ACCW         = 24,
    parameter ADDER_STAGES = 2,
    parameter LEVELS       = 4,
    parameter TW           = 25,
    parameter MW           = 25,
    parameter OW           = 40,
    parameter RQW          = 50,
    parameter LW           = 16,
    parameter CLASSES      = 10,
    parameter CW           = 4,
    parameter LOGIT_SLOTS  = 16,
    parameter INPUTS       = 784,
    parameter INW          = 10,
    parameter PIX_ROWS     = 49,
    parameter PIX_AW       = 6,
    parameter ACT_AW       = 6,
    parameter ACT_RW       = 1,
    parameter ACT_DEPTH    = 64,
    parameter TMAX         = 18,
    parameter WIN_AW       = 6,
    parameter WPW          = 10,
    parameter WINDOWED     = 1,
    parameter GMAX         = 4,
    parameter LAYERS       = 4,
    parameter LAYW         = 2,
    parameter W_DEPTH      = 16,
    parameter W_AW         = 4,
    parameter T_DEPTH      = 16,
    parameter T_AW         = 4,
    parameter R_DEPTH      = 16,
    parameter R_AW         = 4,
    parameter W_FILE       = "weights.hex",
    parameter T_FILE0      = "thresholds_0.hex",
    parameter T_FILE1      = "thresholds_1.hex",
    parameter T_FILE2      = "thresholds_2.hex",
    parameter T_FILE3      = "thresholds_3.hex",
    parameter R_FILE       = "requant.hex",
    parameter D_FILE       = "layers.hex"
) (
    input  wire                  clk,
    input  wire                  rst,
    input  wire                  in_valid,
    output wire                  in_ready,
    input  wire [7:0]            in_pixel,
    output wire                  out_valid,
    input  wire                  out_ready,
    output wire [CW-1:0]         out_class,
    output wire [CLASSES*LW-1:0] out_logits,
    output reg  [31:0]           cycles
);
    localparam [2:0] S_INPUT = 3'd0, S_DESC = 3'd1, S_LOAD = 3'd2, S_RUN = 3'd3,
                     S_DRAIN = 3'd4, S_ARGMAX = 3'd5, S_OUTPUT = 3'd6;
    // From the last issue to the last write: operands read and registered, products, adder
    // tree, accumulator, POST post-processing stages, max-pool, packing, then the flush of a
    // partial row.
    localparam POST = 5;
    localparam DRAIN = 6 + POST + ADDER_STAGES;
    localparam RSLOT = MW + OW;
    localparam OUTW  = LW > EBITS ? LW : EBITS;
    localparam PEW   = $clog2(PE + 1);
    localparam [PEW-1:0] PE_COUNT = PE;
    localparam SRC_AW = PIX_AW > ACT_AW ? PIX_AW : ACT_AW;
    localparam FW = SIMD_LOG2 + 2;
    localparam [INW-1:0] INPUT_LANE_MASK = SIMD - 1;

    reg [2:0] state;
    reg [LAYW-1:0] layer;
    reg counting;
    reg [4:0] drain;
    reg [CW-1:0] scan;

    // ---- The layer descriptor (registered read; the address is the layer).
    wire [`QNNC_DESC_BITS-1:0] desc;
    qnnc_rom #(.WIDTH(`QNNC_DESC_BITS), .DEPTH(LAYERS), .AW(LAYW), .FILE(D_FILE)) descriptors (
        .clk(clk), .addr(layer), .data(desc));
    wire in_bipolar  = desc[`QNNC_IN_BIPOLAR];
    wire w_bipolar   = desc[`QNNC_W_BIPOLAR];
    wire requant     = desc[`QNNC_REQUANT];
    wire raw         = desc[`QNNC_RAW];
    wire last_layer  = desc[`QNNC_LAST];
    wire direct      = desc[`QNNC_DIRECT];
    wire mask_mode   = desc[`QNNC_MASK];
    wire add         = desc[`QNNC_ADD];
    wire [`QNNC_T_LAST_W-1:0]    t_last    = desc[`QNNC_T_LAST];
    wire [`QNNC_G_LAST_W-1:0]    g_last    = desc[`QNNC_G_LAST];
    wire [`QNNC_G_TAIL_W-1:0]    g_tail    = desc[`QNNC_G_TAIL];
    wire [`QNNC_LANE_TAIL_W-1:0] lane_tail = desc[`QNNC_LANE_TAIL];
    wire [`QNNC_W_BASE_W-1:0]    w_base    = desc[`QNNC_W_BASE];
    wire [`QNNC_P_BASE_W-1:0]    p_base    = desc[`QNNC_P_BASE];
    wire [`QNNC_P_LAST_W-1:0]    p_last    = desc[`QNNC_P_LAST];
    wire [`QNNC_PW_LAST_W-1:0]   pw_last   = desc[`QNNC_PW_LAST];
    wire [`QNNC_PH_LAST_W-1:0]   ph_last   = desc[`QNNC_PH_LAST];
    wire [`QNNC_SHIFT_W-1:0]     shift     = desc[`QNNC_SHIFT];
    wire [`QNNC_LO_W-1:0]        clamp_lo  = desc[`QNNC_LO];
    wire [`QNNC_HI_W-1:0]        clamp_hi  = desc[`QNNC_HI];
    wire [ACT_RW-1:0]            src_region = desc[`QNNC_SRC_REGION];
    wire [ACT_RW-1:0]            dst_region = desc[`QNNC_DST_REGION];
    wire [ACT_RW-1:0]            skip_region = desc[`QNNC_SKIP_REGION];

    // ---- Pixel buffer: pixels are packed SIMD to a row as they arrive.
    reg [INW-1:0] input_count;
    reg [SIMD*8-1:0] pixel_row;
    wire [INW-1:0] input_lane = input_count & INPUT_LANE_MASK;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [INW-1:0] input_row = input_count >> SIMD_LOG2;  // PIX_AW bits address the buffer
    /* verilator lint_on UNUSEDSIGNAL */
    wire [SIMD*8-1:0] pixel_merged;
    genvar j, i;
    generate
        for (j = 0; j < SIMD; j = j + 1) begin : g_pixel_lane
            localparam [INW-1:0] LANE = j;
            assign pixel_merged[j*8 +: 8] = input_lane == LANE ? in_pixel : pixel_row[j*8 +: 8];
        end
    endgenerate
    wire accept = state == S_INPUT && in_valid;
    wire last_input = input_count == INPUTS - 1;
    wire pixel_write = accept && (input_lane == INPUT_LANE_MASK || last_input);

    // ---- Sources: the pixel buffer (layer 0) and the activation memory, addressed as
    // {region, row}: a concatenation, so that the read address path is no longer than a row's.
    wire first_layer = layer == 0;
    wire [SIMD*8-1:0] pixel_word;
    wire [SIMD*ABITS-1:0] act_word;
    wire [ACT_AW-1:0] src_row_act;
    wire [PIX_AW-1:0] src_row_pixel;
    wire [SRC_AW-1:0] loader_row;
    // An addition's window: its second row is the skip tensor's (the loader says which).
    wire loader_second;
    wire [ACT_RW-1:0] read_region = add && loader_second ? skip_region : src_region;
    reg  [`QNNC_T_LAST_W-1:0] i_t;
    wire [`QNNC_XW-1:0] direct_row = {{(`QNNC_XW-`QNNC_T_LAST_W){1'b0}}, i_t};
    /* verilator lint_off UNUSEDSIGNAL */
    wire [`QNNC_XW-1:0] src_row = direct ? direct_row : {{(`QNNC_XW-SRC_AW){1'b0}}, loader_row};
    /* verilator lint_on UNUSEDSIGNAL */
    assign src_row_act = src_row[ACT_AW-1:0];
    assign src_row_pixel = src_row[PIX_AW-1:0];
    qnnc_ram #(.WIDTH(SIMD*8), .DEPTH(PIX_ROWS), .AW(PIX_AW)) pixel_buffer (
        .clk(clk), .write(pixel_write), .write_addr(input_row[PIX_AW-1:0]),
        .write_data(pixel_merged), .read_addr(src_row_pixel), .read_data(pixel_word));
    wire act_write;
    wire [ACT_AW-1:0] act_write_row;
    wire [SIMD*ABITS-1:0] act_write_data;
    qnnc_ram #(.WIDTH(SIMD*ABITS), .DEPTH(ACT_DEPTH), .AW(ACT_RW+ACT_AW)) act_memory (
        .clk(clk), .write(act_write), .write_addr({dst_region, act_write_row}),
        .write_data(act_write_data), .read_addr({read_region, src_row_act}),
        .read_data(act_word));
    // The source word, each element widened to EBITS bits.
    wire [SIMD*EBITS-1:0] src_word;
    generate
        for (j = 0; j < SIMD; j = j + 1) begin : g_source_lane
            wire [7:0] pixel = pixel_word[j*8 +: 8];
            wire [ABITS-1:0] code = act_word[j*ABITS +: ABITS];
            wire [EBITS-1:0] pixel_wide, code_wide;
            if (EBITS > 8) begin : g_pixel_extend
                assign pixel_wide = {{(EBITS-8){1'b0}}, pixel};
            end else begin : g_pixel_fits
                assign pixel_wide = pixel;
            end
            if (EBITS > ABITS) begin : g_code_extend
                assign code_wide = {{(EBITS-ABITS){1'b0}}, code};
            end else begin : g_code_fits
                assign code_wide = code;
            end
            assign src_word[j*EBITS +: EBITS] = first_layer ? pixel_wide : code_wide;
        end
    endgenerate

    // ---- Window memory and its loader.
    // Three banks let the loader fill a window while the one before it is being written and the
    // one before that is being read.
    localparam BANKS = 3;
    localparam [1:0] LAST_BANK = BANKS - 1;
    reg [BANKS-1:0] busy, ready;
    wire claim, filled;
    wire [1:0] claim_bank, filled_bank;
    wire [WIN_AW-1:0] win_read_addr;
    wire [SIMD*(EBITS+1)-1:0] win_word;
    generate
        if (WINDOWED) begin : g_window
            wire win_write;
            wire [WIN_AW-1:0] win_write_addr;
            wire [SIMD*(EBITS+1)-1:0] win_write_data;
            qnnc_loader #(.SIMD(SIMD), .SIMD_LOG2(SIMD_LOG2), .EBITS(EBITS), .TMAX(TMAX),
                          .WIN_AW(WIN_AW), .WPW(WPW), .SRC_AW(SRC_AW), .BANKS(BANKS)) loader (
                .clk(clk), .rst(rst), .start(state == S_LOAD), .run(state == S_RUN),
                .direct(direct), .kc(desc[`QNNC_KC]), .wc(desc[`QNNC_WC]),
                .hwc(desc[`QNNC_HWC]), .ex0(desc[`QNNC_EX0]), .ey0(desc[`QNNC_EY0]),
                .step_rx(desc[`QNNC_STEP_RX]), .step_ry(desc[`QNNC_STEP_RY]),
                .step_px(desc[`QNNC_STEP_PX]), .step_py(desc[`QNNC_STEP_PY]),
                .step_ky(desc[`QNNC_STEP_KY]),
                .k_last(desc[`QNNC_K_LAST]), .p_last(p_last), .pw_last(pw_last),
                .ph_last(ph_last), .busy(busy), .claim(claim), .claim_bank(claim_bank),
                .filled(filled), .filled_bank(filled_bank), .src_row(loader_row),
                .second(loader_second),
                .src_word(src_word), .win_write(win_write), .win_addr(win_write_addr),
                .win_data(win_write_data));
            qnnc_ram #(.WIDTH(SIMD*(EBITS+1)), .DEPTH(BANKS*TMAX), .AW(WIN_AW)) window (
                .clk(clk), .write(win_write), .write_addr(win_write_addr),
                .write_data(win_write_data), .read_addr(win_read_addr), .read_data(win_word));
        end else begin : g_no_window
            // Every layer is dense: no loader, no window memory.
            /* verilator lint_off UNUSEDSIGNAL */
            wire unused = &{1'b0, busy, win_read_addr, desc};
            /* verilator lint_on UNUSEDSIGNAL */
            assign claim = 1'b0;
            assign claim_bank = 2'd0;
            assign filled = 1'b0;
            assign filled_bank = 2'd0;
            assign loader_row = {SRC_AW{1'b0}};
            assign loader_second = 1'b0;
            assign win_word = {SIMD*(EBITS+1){1'b0}};
        end
    endgenerate

    // ---- Issuer: one chunk (SIMD elements of the window) of one group of PE outputs a cycle.
    reg i_active;
    reg [1:0] i_bank;
    reg [WIN_AW-1:0] i_bank_base;
    reg [`QNNC_G_LAST_W-1:0]  i_g;
    reg [`QNNC_P_LAST_W-1:0]  i_rx, i_ry;
    reg [`QNNC_PW_LAST_W-1:0] i_px;
    reg [`QNNC_PH_LAST_W-1:0] i_py;
    reg [W_AW-1:0] i_waddr;
    reg [`QNNC_P_BASE_W-1:0] i_paddr;
    wire i_go = state == S_RUN && i_active && (direct || ready[i_bank]);
    wire i_last_chunk = i_t == t_last;
    wire i_last_group = i_g == g_last;
    wire i_pixel_done = i_last_chunk && i_last_group;
    wire i_window_first = i_rx == 0 && i_ry == 0;
    wire i_window_last = i_rx == p_last && i_ry == p_last;
    wire i_layer_done = i_pixel_done && i_window_last && i_px == pw_last && i_py == ph_last;
    localparam [WIN_AW-1:0] BANK_ROWS = TMAX;
    assign win_read_addr = i_bank_base + i_t[WIN_AW-1:0];

    // Side information of an issued chunk, delayed beside the datapath:
    // {parameter address, layer_end, window_last, window_first, last_group, g, last_chunk,
    // first_chunk, valid}.
    localparam GW = `QNNC_G_LAST_W;
    localparam PAW = `QNNC_P_BASE_W;
    localparam SBW = 7 + GW + PAW;
    wire [SBW-1:0] sb_issue = {i_paddr, i_layer_done, i_window_last, i_window_first, i_last_group,
                               i_g, i_last_chunk, i_t == 0, i_go};
    wire [SBW-1:0] sb_operands, sb_sum, sb_acc, sb_result, sb_pack;
    qnnc_delay #(.WIDTH(SBW), .DEPTH(1)) d_operands (
        .clk(clk), .rst(rst), .d(sb_issue), .q(sb_operands));
    qnnc_delay #(.WIDTH(SBW), .DEPTH(2 + ADDER_STAGES)) d_sum (
        .clk(clk), .rst(rst), .d(sb_operands), .q(sb_sum));
    qnnc_delay #(.WIDTH(SBW), .DEPTH(1)) d_acc (
        .clk(clk), .rst(rst), .d(sb_sum), .q(sb_acc));
    qnnc_delay #(.WIDTH(SBW), .DEPTH(POST)) d_result (
        .clk(clk), .rst(rst), .d(sb_acc), .q(sb_result));
    qnnc_delay #(.WIDTH(SBW), .DEPTH(1)) d_pack (
        .clk(clk), .rst(rst), .d(sb_result), .q(sb_pack));
    /* verilator lint_off UNUSEDSIGNAL */
    wire [SBW-1:0] unused_sb = sb_acc | sb_pack;
    /* verilator lint_on UNUSEDSIGNAL */

    // ---- Operands: the window row (or, for a dense layer, the source row with the lanes past
    // the fan-in masked) and the weights, both registered reads, registered again so that the
    // lanes start from flip-flops rather than from the slow outputs of block RAM.
    wire [SIMD*EBITS-1:0] lane_codes;
    wire [SIMD-1:0] lane_valid;
    reg [SIMD*EBITS-1:0] operand_codes;
    reg [SIMD-1:0] operand_valid;
    always @(posedge clk) begin
        operand_codes <= lane_codes;
        operand_valid <= lane_valid;
    end
    generate
        for (j = 0; j < SIMD; j = j + 1) begin : g_operand
            localparam [`QNNC_LANE_TAIL_W-1:0] LANE = j;
            wire in_fan = !sb_operands[2] || LANE < lane_tail;
            assign lane_codes[j*EBITS +: EBITS] =
                direct ? src_word[j*EBITS +: EBITS] : win_word[j*(EBITS+1) +: EBITS];
            assign lane_valid[j] = direct ? in_fan : win_word[j*(EBITS+1) + EBITS];
        end
    endgenerate
    wire [PE*SIMD*WBITS-1:0] weights;
    qnnc_rom #(.WIDTH(PE*SIMD*WBITS), .DEPTH(W_DEPTH), .AW(W_AW), .FILE(W_FILE)) weight_rom (
        .clk(clk), .addr(i_waddr), .data(weights));
    reg [PE*SIMD*WBITS-1:0] operand_weights;
    always @(posedge clk)
        operand_weights <= weights;

    wire [PE*ACCW-1:0] accs;
    generate
        for (i = 0; i < PE; i = i + 1) begin : g_pe
            qnnc_pe #(.SIMD(SIMD), .SIMD_LOG2(SIMD_LOG2), .WBITS(WBITS), .EBITS(EBITS),
                      .ACCW(ACCW), .ADDER_STAGES(ADDER_STAGES)) pe (
                .clk(clk), .w(operand_weights[i*SIMD*WBITS +: SIMD*WBITS]),
                .w_bipolar(w_bipolar), .mask(mask_mode), .a(operand_codes), .a_valid(operand_valid),
                .a_bipolar(in_bipolar),
                .accumulate(sb_sum[0]), .first(sb_sum[1]), .acc(accs[i*ACCW +: ACCW]));
        end
    endgenerate

    // ---- Post-processing: the parameters of the group are read while its last sum is
    // accumulated; thresholds, multiply-shift and the raw accumulator each take POST cycles.
    /* verilator lint_off UNUSEDSIGNAL */
    wire [PAW-1:0] param_addr = sb_sum[7 + GW +: PAW];  // each memory uses its address bits
    /* verilator lint_on UNUSEDSIGNAL */
    wire [PE*RSLOT-1:0] requant_word;
    qnnc_rom #(.WIDTH(PE*RSLOT), .DEPTH(R_DEPTH), .AW(R_AW), .FILE(R_FILE)) requant_rom (
        .clk(clk), .addr(param_addr[R_AW-1:0]), .data(requant_word));
    /* verilator lint_off UNUSEDSIGNAL */
    wire [PE*OUTW-1:0] results;  // codes use ABITS of a slot, logits LW: narrow logits leave bits
    /* verilator lint_on UNUSEDSIGNAL */
    generate
        for (i = 0; i < PE; i = i + 1) begin : g_post
            wire signed [ACCW-1:0] acc = accs[i*ACCW +: ACCW];
            wire [EBITS-1:0] code;
            wire signed [OUTW-1:0] scaled;
            wire [EBITS-1:0] counted;
            qnnc_threshold #(.ACCW(ACCW), .TW(TW), .LEVELS(LEVELS), .EBITS(EBITS), .PE(PE),
                             .SLOT(i), .DEPTH(T_DEPTH), .AW(T_AW), .FILE0(T_FILE0),
                             .FILE1(T_FILE1), .FILE2(T_FILE2), .FILE3(T_FILE3)) thresholder (
                .clk(clk), .group(param_addr[T_AW-1:0]), .acc(acc), .code(counted));
            qnnc_delay #(.WIDTH(EBITS), .DEPTH(POST - LEVELS)) code_delay (
                .clk(clk), .rst(1'b0), .d(counted), .q(code));
            qnnc_requant #(.ACCW(ACCW), .MW(MW), .OW(OW), .RQW(RQW), .SHW(`QNNC_SHIFT_W),
                           .CLW(`QNNC_LO_W), .OUTW(OUTW)) requantizer (
                .clk(clk), .acc(acc), .multiplier(requant_word[i*RSLOT +: MW]),
                .offset(requant_word[i*RSLOT + MW +: OW]), .shift(shift),
                .lo(clamp_lo), .hi(clamp_hi), .value(scaled));
            /* verilator lint_off UNUSEDSIGNAL */
            wire signed [ACCW-1:0] raw_held;  // the logits' width of it is used
            /* verilator lint_on UNUSEDSIGNAL */
            qnnc_delay #(.WIDTH(ACCW), .DEPTH(POST)) raw_delay (
                .clk(clk), .rst(1'b0), .d(acc), .q(raw_held));
            wire signed [OUTW-1:0] raw_value;
            if (OUTW > ACCW) begin : g_extend
                assign raw_value = {{(OUTW - ACCW){raw_held[ACCW-1]}}, raw_held};
            end else begin : g_truncate
                // The last layer's accumulator fits its logits' width by construction.
                assign raw_value = raw_held[OUTW-1:0];
            end
            assign results[i*OUTW +: OUTW] =
                raw     ? raw_value :
                requant ? scaled : {{(OUTW-EBITS){1'b0}}, code};
        end
    endgenerate

    // ---- Results: logits are shifted into the logit register; activation codes are
    // max-pooled over the pooling window (one running maximum per channel) and, at the
    // window's last pixel, packed into rows of the layer's destination region.
    wire result_valid = sb_result[0] && sb_result[2];
    reg [LOGIT_SLOTS*LW-1:0] logits;
    wire [LOGIT_SLOTS*LW-1:0] logits_shifted;
    assign out_logits = logits[CLASSES*LW-1:0];
    localparam GMW = GMAX > 1 ? $clog2(GMAX) : 1;
    reg [PE*ABITS-1:0] pool_max [0:(1<<GMW)-1];
    /* verilator lint_off UNUSEDSIGNAL */
    wire [GW-1:0] result_g = sb_result[3 +: GW];  // pooling layers have at most GMAX groups
    /* verilator lint_on UNUSEDSIGNAL */
    wire [PE*ABITS-1:0] pool_held = pool_max[result_g[GMW-1:0]];
    wire [PE*ABITS-1:0] pooled;
    wire [PE*LW-1:0] result_logits;
    generate
        // The groups of the last layer arrive in order; after the last, group 0 is lowest.
        if (LOGIT_SLOTS > PE) begin : g_logit_shift
            assign logits_shifted = {result_logits, logits[LOGIT_SLOTS*LW-1:PE*LW]};
        end else begin : g_logit_load
            assign logits_shifted = result_logits;
        end
        for (i = 0; i < PE; i = i + 1) begin : g_pool
            wire [ABITS-1:0] code = results[i*OUTW +: ABITS];
            wire [ABITS-1:0] held = pool_held[i*ABITS +: ABITS];
            assign pooled[i*ABITS +: ABITS] = (sb_result[GW+4] || code > held) ? code : held;
            assign result_logits[i*LW +: LW] = results[i*OUTW +: LW];
        end
    endgenerate
    reg pack_valid;
    reg [PEW-1:0] pack_count;
    reg [PE*ABITS-1:0] pack_codes;

    // Packing: the codes of a group go to lanes fill.., spilling into the next row.
    localparam [FW-1:0] ROW_LANES = SIMD;
    reg [FW-1:0] fill;
    reg [ACT_AW-1:0] out_row;
    reg [SIMD*ABITS-1:0] partial;
    wire [FW-1:0] filled_to = fill + {{(FW-PEW){1'b0}}, pack_count};
    wire [SIMD*ABITS-1:0] spread;
    generate
        if (PE < SIMD) begin : g_pad
            assign spread = {{((SIMD-PE)*ABITS){1'b0}}, pack_codes};
        end else begin : g_full
            assign spread = pack_codes;
        end
    endgenerate
    localparam RBW = SIMD_LOG2 > 0 ? SIMD_LOG2 : 1;
    wire [SIMD*ABITS-1:0] rotated;
    qnnc_rotate #(.LANES(SIMD), .LANES_LOG2(SIMD_LOG2), .EW(ABITS), .BW(RBW)) pack_rotate (
        .word(spread), .by(fill[RBW-1:0]), .rotated(rotated));
    wire [SIMD*ABITS-1:0] row_out, row_next;
    generate
        for (j = 0; j < SIMD; j = j + 1) begin : g_pack
            localparam [FW-1:0] LANE = j;
            wire this_row = LANE >= fill && LANE < filled_to;
            wire next_row = filled_to > ROW_LANES && LANE < filled_to - ROW_LANES;
            assign row_out[j*ABITS +: ABITS] =
                this_row ? rotated[j*ABITS +: ABITS] : partial[j*ABITS +: ABITS];
            assign row_next[j*ABITS +: ABITS] =
                next_row ? rotated[j*ABITS +: ABITS] : row_out[j*ABITS +: ABITS];
        end
    endgenerate
    wire row_complete = pack_valid && filled_to >= ROW_LANES;
    wire flush = state == S_DRAIN && drain == DRAIN - 1 && fill != 0;
    assign act_write = !last_layer && (row_complete || flush);
    assign act_write_row = out_row;
    assign act_write_data = flush ? partial : row_out;

    // ---- Argmax over the logits, one a cycle: the logits rotate by one place a cycle, so
    // that the one compared is always the lowest; after CLASSES cycles they are back in place.
    wire [CW-1:0] best;
    wire [CLASSES*LW-1:0] logits_rotated;
    generate
        if (CLASSES > 1) begin : g_rotate_logits
            assign logits_rotated = {logits[LW-1:0], logits[CLASSES*LW-1:LW]};
        end else begin : g_one_logit
            assign logits_rotated = logits[LW-1:0];
        end
    endgenerate
    qnnc_argmax #(.LW(LW), .CW(CW)) argmax (
        .clk(clk), .valid(state == S_ARGMAX), .start(scan == 0), .value(logits[LW-1:0]),
        .index(scan), .best_index(best));
    assign out_class = best;

    assign in_ready  = state == S_INPUT;
    assign out_valid = state == S_OUTPUT;

    always @(posedge clk) begin
        if (result_valid && !last_layer)
            pool_max[result_g[GMW-1:0]] <= pooled;
    end

    always @(posedge clk) begin
        if (rst) begin
            state <= S_INPUT;
            layer <= {LAYW{1'b0}};
            counting <= 1'b0;
            cycles <= 32'd0;
            input_count <= {INW{1'b0}};
            busy <= {BANKS{1'b0}};
            ready <= {BANKS{1'b0}};
            i_active <= 1'b0;
            pack_valid <= 1'b0;
            drain <= 5'd0;
            scan <= {CW{1'b0}};
        end else begin
            if (counting && state != S_OUTPUT)
                cycles <= cycles + 1;
            pack_valid <= result_valid && !last_layer && sb_result[GW+5];
            pack_codes <= pooled;
            pack_count <= sb_result[GW+3] ? g_tail : PE_COUNT;
            if (result_valid && last_layer)
                logits <= logits_shifted;
            if (pack_valid) begin
                fill <= filled_to >= ROW_LANES ? filled_to - ROW_LANES : filled_to;
                partial <= row_complete ? row_next : row_out;
                if (row_complete)
                    out_row <= out_row + 1'b1;
            end

            case (state)
                S_INPUT: if (accept) begin
                    if (!counting) begin
                        counting <= 1'b1;
                        cycles <= 32'd1;
                    end
                    pixel_row <= pixel_merged;
                    input_count <= input_count + 1'b1;
                    if (last_input) begin
                        input_count <= {INW{1'b0}};
                        state <= S_DESC;
                    end
                end
                S_DESC: state <= S_LOAD;
                S_LOAD: begin
                    state <= S_RUN;
                    i_active <= 1'b1;
                    i_bank <= 2'd0;
                    i_bank_base <= {WIN_AW{1'b0}};
                    i_t <= 0; i_g <= 0;
                    i_rx <= 0; i_ry <= 0; i_px <= 0; i_py <= 0;
                    i_waddr <= w_base;
                    i_paddr <= p_base;
                    busy <= {BANKS{1'b0}};
                    ready <= {BANKS{1'b0}};
                    fill <= 0;
                    out_row <= {ACT_AW{1'b0}};
                end
                S_RUN: if (i_go && i_layer_done) begin
                    i_active <= 1'b0;
                    state <= S_DRAIN;
                    drain <= 5'd0;
                end
                S_DRAIN: begin
                    drain <= drain + 1'b1;
                    if (drain == DRAIN - 1) begin
                        if (last_layer) begin
                            state <= S_ARGMAX;
                            scan <= {CW{1'b0}};
                        end else begin
                            layer <= layer + 1'b1;
                            state <= S_DESC;
                        end
                    end
                end
                S_ARGMAX: begin
                    scan <= scan + 1'b1;
                    logits[CLASSES*LW-1:0] <= logits_rotated;
                    if (scan == CLASSES - 1)
                        state <= S_OUTPUT;
                end
                S_OUTPUT: if (out_ready) begin
                    state <= S_INPUT;
                    layer <= {LAYW{1'b0}};
                    counting <= 1'b0;
                end
                default: ;
            endcase

            // Issuer: one chunk of one group of the current pixel, in pooling order.
            if (i_go) begin
                i_waddr <= i_waddr + 1'b1;
                if (!i_last_chunk) begin
                    i_t <= i_t + 1'b1;
                end else begin
                    i_t <= 0;
                    if (!i_last_group) begin
                        i_g <= i_g + 1'b1;
                        i_paddr <= i_paddr + 1'b1;
                    end else begin
                        i_g <= 0;
                        i_paddr <= p_base;
                        i_waddr <= w_base;
                        i_bank <= i_bank == LAST_BANK ? 2'd0 : i_bank + 2'd1;
                        i_bank_base <= i_bank == LAST_BANK ? {WIN_AW{1'b0}}
                                                           : i_bank_base + BANK_ROWS;
                        if (i_rx != p_last) begin
                            i_rx <= i_rx + 1'b1;
                        end else begin
                            i_rx <= 0;
                            if (i_ry != p_last) begin
                                i_ry <= i_ry + 1'b1;
                            end else begin
                                i_ry <= 0;
                                if (i_px != pw_last) begin
                                    i_px <= i_px + 1'b1;
                                end else begin
                                    i_px <= 0;
                                    i_py <= i_py + 1'b1;
                                end
                            end
                        end
                    end
                end
            end
            // Bank handshake: the loader claims a free bank and fills it; the issuer frees
            // the bank of a pixel when it issues that pixel's last chunk.
            if (state == S_RUN) begin
                if (claim)
                    busy[claim_bank] <= 1'b1;
                if (filled)
                    ready[filled_bank] <= 1'b1;
                if (i_go && i_pixel_done && !direct) begin
                    busy[i_bank] <= 1'b0;
                    ready[i_bank] <= 1'b0;
                end
            end
        end
    end
endmodule
