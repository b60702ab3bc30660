// The accelerator: one PE array shared by all layers in turn, walked by a controller that
// reads a layer descriptor table.
//
// Per layer, for every output pixel: a loader copies the pixel's receptive field from the
// input activation buffer into one of two window banks (SIMD elements a cycle, zeros for
// padding), while the PE array computes the previous pixel from the other bank: PE output
// channels at a time, SIMD window elements a cycle. A finished dot product is turned into an
// activation code (multi-threshold or multiply-shift) in the next cycle and written, max-pooled
// if the layer pools, into the output activation buffer in the cycle after. The two activation
// buffers swap roles from layer to layer; the last layer writes logits, whose argmax is the
// class.
//
// Cycles of a layer: 1 (descriptor) + L(0) + sum over the other pixels p of max(G*T, L(p))
// + G*T + 2 (the post-processing and write stages), where G = ceil(Cout/PE), T = ceil(K/SIMD)
// and L(p) is the loader's cycle count for pixel p. The compiler's scheduler predicts it.
module qnnc_core #(
    parameter PE        = 8,
    parameter SIMD      = 16,
    parameter SIMD_LOG2 = 4,
    parameter WBITS     = 4,
    parameter EBITS     = 8,
    parameter ACCW      = 24,
    parameter NT        = 15,
    parameter TW        = 25,
    parameter MW        = 25,
    parameter OW        = 40,
    parameter RQW       = 50,
    parameter LW        = 16,
    parameter CLASSES   = 10,
    parameter CW        = 4,
    parameter KMAX      = 288,
    parameter ROWS      = 64,
    parameter RW        = 6,
    parameter LAYERS    = 4,
    parameter LAYW      = 2,
    parameter INPUTS    = 784,
    parameter W_DEPTH   = 16,
    parameter W_AW      = 4,
    parameter T_DEPTH   = 16,
    parameter T_AW      = 4,
    parameter R_DEPTH   = 16,
    parameter R_AW      = 4,
    parameter W_FILE    = "weights.hex",
    parameter T_FILE    = "thresholds.hex",
    parameter R_FILE    = "requant.hex",
    parameter D_FILE    = "layers.hex"
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
    // ---- Descriptor fields (32 bits each), in the order the compiler writes them.
    localparam F_IN_H = 0, F_IN_W = 1, F_IN_C = 2, F_OUT_H = 3, F_OUT_W = 4, F_OUT_C = 5,
               F_KERNEL = 6, F_STRIDE = 7, F_PAD = 8, F_K = 9, F_T = 10, F_G = 11,
               F_W_BASE = 12, F_P_BASE = 13, F_FLAGS = 14, F_POOL = 15, F_POOL_H = 16,
               F_POOL_W = 17, F_SHIFT = 18, F_LO = 19, F_HI = 20, FIELDS = 21;
    // Flags.
    localparam B_IN_BIPOLAR = 0, B_W_BIPOLAR = 1, B_REQUANT = 2, B_RAW = 3, B_OUT_BIPOLAR = 4,
               B_POOL = 5, B_LAST = 6;
    localparam S_INPUT = 3'd0, S_START = 3'd1, S_RUN = 3'd2, S_DRAIN1 = 3'd3, S_DRAIN2 = 3'd4,
               S_OUTPUT = 3'd5;
    localparam TSLOT = NT * TW + 1;
    localparam RSLOT = MW + OW;

    reg [2:0] state;
    reg [LAYW-1:0] layer;
    reg counting;

    /* verilator lint_off UNUSEDSIGNAL */
    wire [FIELDS*32-1:0] desc;  // the shift field uses 6 of its 32 bits
    /* verilator lint_on UNUSEDSIGNAL */
    qnnc_rom #(.WIDTH(FIELDS*32), .DEPTH(LAYERS), .AW(LAYW), .FILE(D_FILE)) descriptors (
        .addr(layer), .data(desc));
    wire [31:0] in_h    = desc[F_IN_H*32 +: 32];
    wire [31:0] in_w    = desc[F_IN_W*32 +: 32];
    wire [31:0] in_c    = desc[F_IN_C*32 +: 32];
    wire [31:0] out_h   = desc[F_OUT_H*32 +: 32];
    wire [31:0] out_w   = desc[F_OUT_W*32 +: 32];
    wire [31:0] out_c   = desc[F_OUT_C*32 +: 32];
    wire [31:0] kernel  = desc[F_KERNEL*32 +: 32];
    wire [31:0] stride  = desc[F_STRIDE*32 +: 32];
    wire [31:0] pad     = desc[F_PAD*32 +: 32];
    wire [31:0] fan_in  = desc[F_K*32 +: 32];
    wire [31:0] chunks  = desc[F_T*32 +: 32];
    wire [31:0] groups  = desc[F_G*32 +: 32];
    wire [31:0] w_base  = desc[F_W_BASE*32 +: 32];
    wire [31:0] p_base  = desc[F_P_BASE*32 +: 32];
    wire [31:0] flags   = desc[F_FLAGS*32 +: 32];
    wire [31:0] pool    = desc[F_POOL*32 +: 32];
    wire [31:0] pool_h  = desc[F_POOL_H*32 +: 32];
    wire [31:0] pool_w  = desc[F_POOL_W*32 +: 32];
    wire [5:0]  shift   = desc[F_SHIFT*32 +: 6];
    wire [31:0] clamp_lo = desc[F_LO*32 +: 32];
    wire [31:0] clamp_hi = desc[F_HI*32 +: 32];
    wire [31:0] pixels  = out_h * out_w;
    wire last_layer     = flags[B_LAST];

    // ---- Activation buffers: layer l reads buffer l % 2 and writes buffer (l + 1) % 2.
    wire in_sel = layer[0];
    wire [RW-1:0] load_row;
    wire [SIMD*EBITS-1:0] row_data0, row_data1, bank_data0, bank_data1;
    wire [SIMD*RW-1:0] bank_row;
    wire [SIMD-1:0] bank_write;
    wire [SIMD*EBITS-1:0] bank_write_data;
    wire [SIMD*EBITS-1:0] load_word = in_sel ? row_data1 : row_data0;
    wire [SIMD*EBITS-1:0] rmw_word  = in_sel ? bank_data0 : bank_data1;
    // During input, buffer 0 is written; afterwards the output buffer of the layer.
    wire write_to1 = (state != S_INPUT) && !in_sel;
    qnnc_act_buffer #(.SIMD(SIMD), .EBITS(EBITS), .ROWS(ROWS), .RW(RW)) buffer0 (
        .clk(clk), .row(load_row), .row_data(row_data0), .bank_row(bank_row),
        .bank_data(bank_data0), .write(write_to1 ? {SIMD{1'b0}} : bank_write),
        .write_data(bank_write_data));
    qnnc_act_buffer #(.SIMD(SIMD), .EBITS(EBITS), .ROWS(ROWS), .RW(RW)) buffer1 (
        .clk(clk), .row(load_row), .row_data(row_data1), .bank_row(bank_row),
        .bank_data(bank_data1), .write(write_to1 ? bank_write : {SIMD{1'b0}}),
        .write_data(bank_write_data));

    // ---- Window banks: {valid, code} per element.
    reg [EBITS:0] window0 [0:KMAX-1];
    reg [EBITS:0] window1 [0:KMAX-1];
    reg [1:0] ready;

    // ---- Loader.
    localparam SEG_FULL_ZERO = 2'd0, SEG_LEFT = 2'd1, SEG_RUN = 2'd2, SEG_RIGHT = 2'd3;
    reg        l_active;
    reg [31:0] l_pix, l_oy, l_ox, l_ky, l_rem, l_cur, l_wp;
    reg [1:0]  l_seg;
    reg        l_fresh;
    // The current row of the receptive field: where it lies in the input, which of its
    // columns are inside the image.
    wire signed [32:0] row_y = $signed({1'b0, l_oy * stride + l_ky}) - $signed({1'b0, pad});
    wire [31:0] ox_s     = l_ox * stride;
    wire [31:0] left_pad = pad > ox_s ? pad - ox_s : 32'd0;
    wire [31:0] kx0      = left_pad < kernel ? left_pad : kernel;
    wire [31:0] right_end = in_w + pad - ox_s;
    wire [31:0] kx1      = (in_w + pad > ox_s) ? (right_end < kernel ? right_end : kernel) : 32'd0;
    wire row_outside     = row_y < 0 || row_y >= $signed({1'b0, in_h}) || kx1 <= kx0;
    wire [31:0] run_cur  = (row_y[31:0] * in_w + ox_s + kx0 - pad) * in_c;
    wire [31:0] run_len  = (kx1 - kx0) * in_c;
    // This cycle's segment: the row's first one on a fresh row, else the one in progress.
    wire [1:0]  e_seg = !l_fresh ? l_seg :
                        row_outside ? SEG_FULL_ZERO : (kx0 != 0 ? SEG_LEFT : SEG_RUN);
    wire [31:0] e_rem = !l_fresh ? l_rem :
                        row_outside ? kernel * in_c : (kx0 != 0 ? kx0 * in_c : run_len);
    wire [31:0] e_cur = l_fresh ? run_cur : l_cur;
    wire [SIMD_LOG2-1:0] e_offset = e_seg == SEG_RUN ? e_cur[SIMD_LOG2-1:0] : {SIMD_LOG2{1'b0}};
    wire [31:0] e_offset32 = {{(32-SIMD_LOG2){1'b0}}, e_offset};
    wire [31:0] e_room  = SIMD - e_offset32;
    wire [31:0] e_count = e_rem < e_room ? e_rem : e_room;
    wire [31:0] e_left  = e_rem - e_count;
    assign load_row = e_cur[SIMD_LOG2 +: RW];
    wire l_bank = l_pix[0];
    wire l_go = state == S_RUN && l_active && !ready[l_bank];
    wire l_row_done = e_left == 0 && (e_seg == SEG_FULL_ZERO || e_seg == SEG_RIGHT ||
                                      (e_seg == SEG_RUN && kx1 >= kernel));
    wire l_pixel_done = l_row_done && l_ky == kernel - 1;

    // ---- Issuer.
    reg        i_active;
    reg [31:0] i_pix, i_g, i_t, i_waddr, i_oy, i_ox, i_py, i_px, i_ry, i_rx;
    wire i_bank = i_pix[0];
    wire i_go = state == S_RUN && i_active && ready[i_bank];
    wire i_last_chunk = i_t == chunks - 1;
    wire i_pixel_done = i_last_chunk && i_g == groups - 1;
    wire i_layer_done = i_pixel_done && i_pix == pixels - 1;

    wire [SIMD*EBITS-1:0] lane_codes;
    wire [SIMD-1:0] lane_valid;
    genvar j;
    generate
        for (j = 0; j < SIMD; j = j + 1) begin : g_window_read
            wire [31:0] position = i_t * SIMD + j;
            wire [EBITS:0] element = i_bank ? window1[position[$clog2(KMAX)-1:0]]
                                            : window0[position[$clog2(KMAX)-1:0]];
            assign lane_codes[j*EBITS +: EBITS] = element[EBITS-1:0];
            assign lane_valid[j] = element[EBITS] && position < fan_in;
        end
    endgenerate

    wire [PE*SIMD*WBITS-1:0] weights;
    qnnc_rom #(.WIDTH(PE*SIMD*WBITS), .DEPTH(W_DEPTH), .AW(W_AW), .FILE(W_FILE)) weight_rom (
        .addr(i_waddr[W_AW-1:0]), .data(weights));

    wire [PE*ACCW-1:0] accs;
    genvar i;
    generate
        for (i = 0; i < PE; i = i + 1) begin : g_pe
            qnnc_pe #(.SIMD(SIMD), .WBITS(WBITS), .EBITS(EBITS), .ACCW(ACCW)) pe (
                .clk(clk), .enable(i_go), .first(i_t == 0),
                .w(weights[i*SIMD*WBITS +: SIMD*WBITS]), .w_bipolar(flags[B_W_BIPOLAR]),
                .a(lane_codes), .a_valid(lane_valid), .a_bipolar(flags[B_IN_BIPOLAR]),
                .acc(accs[i*ACCW +: ACCW]));
        end
    endgenerate

    // ---- Post-processing stage: the dot products issued last cycle become codes or logits.
    reg        p_valid, p_first, p_skip;
    reg [31:0] p_g, p_addr;
    wire [PE*TSLOT-1:0] threshold_word;
    wire [PE*RSLOT-1:0] requant_word;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [31:0] p_param = p_base + p_g;  // as wide as the descriptor; the memories use the low bits
    /* verilator lint_on UNUSEDSIGNAL */
    qnnc_rom #(.WIDTH(PE*TSLOT), .DEPTH(T_DEPTH), .AW(T_AW), .FILE(T_FILE)) threshold_rom (
        .addr(p_param[T_AW-1:0]), .data(threshold_word));
    qnnc_rom #(.WIDTH(PE*RSLOT), .DEPTH(R_DEPTH), .AW(R_AW), .FILE(R_FILE)) requant_rom (
        .addr(p_param[R_AW-1:0]), .data(requant_word));
    localparam OUTW = LW > EBITS ? LW : EBITS;
    wire [PE*OUTW-1:0] results;
    generate
        for (i = 0; i < PE; i = i + 1) begin : g_post
            wire signed [ACCW-1:0] acc = accs[i*ACCW +: ACCW];
            wire [EBITS-1:0] code;
            wire signed [OUTW-1:0] scaled;
            qnnc_threshold #(.ACCW(ACCW), .TW(TW), .NT(NT), .EBITS(EBITS)) threshold (
                .acc(acc), .thresholds(threshold_word[i*TSLOT +: NT*TW]),
                .descending(threshold_word[i*TSLOT + NT*TW]),
                .bipolar(flags[B_OUT_BIPOLAR]), .code(code));
            qnnc_requant #(.ACCW(ACCW), .MW(MW), .OW(OW), .RQW(RQW), .OUTW(OUTW)) requant (
                .acc(acc), .multiplier(requant_word[i*RSLOT +: MW]),
                .offset(requant_word[i*RSLOT + MW +: OW]), .shift(shift),
                .lo(clamp_lo), .hi(clamp_hi), .value(scaled));
            wire signed [OUTW-1:0] raw;
            if (OUTW > ACCW) begin : g_extend
                assign raw = {{(OUTW - ACCW){acc[ACCW-1]}}, acc};
            end else begin : g_truncate
                // The last layer's accumulator fits its logits' width by construction.
                assign raw = acc[OUTW-1:0];
            end
            assign results[i*OUTW +: OUTW] =
                flags[B_RAW]     ? raw :
                flags[B_REQUANT] ? scaled : {{(OUTW-EBITS){1'b0}}, code};
        end
    endgenerate

    // ---- Write stage.
    reg        w_valid, w_first, w_skip;
    reg [31:0] w_g, w_addr;
    reg [PE*OUTW-1:0] w_results;
    reg [CLASSES*LW-1:0] logits;
    assign out_logits = logits;
    qnnc_argmax #(.CLASSES(CLASSES), .LW(LW), .CW(CW)) argmax (.logits(logits), .index(out_class));

    reg [31:0] input_count;
    integer q;
    // Each bank takes at most one element a cycle: during input, pixel i goes to bank i % SIMD;
    // afterwards PE i's result goes to the bank of element (w_addr + i), max-pooled with what
    // the bank holds there unless this is the first output of its pooling window.
    generate
        for (j = 0; j < SIMD; j = j + 1) begin : g_write
            localparam [SIMD_LOG2-1:0] BANK = j;
            wire [SIMD_LOG2-1:0] lane = BANK - w_addr[SIMD_LOG2-1:0];
            wire [31:0] lane32 = {{(32-SIMD_LOG2){1'b0}}, lane};
            /* verilator lint_off UNUSEDSIGNAL */
            wire [31:0] element = w_addr + lane32;  // bank and row bits are what address it
            /* verilator lint_on UNUSEDSIGNAL */
            wire takes_result = lane32 < PE && w_g * PE + lane32 < out_c && !w_skip;
            wire [31:0] pe_index = lane32 < PE ? lane32 : 32'd0;
            wire [EBITS-1:0] code = w_results[pe_index*OUTW +: EBITS];
            wire [EBITS-1:0] held = rmw_word[j*EBITS +: EBITS];
            wire input_write = state == S_INPUT && in_valid
                               && input_count[SIMD_LOG2-1:0] == BANK;
            assign bank_row[j*RW +: RW] = state == S_INPUT ? input_count[SIMD_LOG2 +: RW]
                                                            : element[SIMD_LOG2 +: RW];
            assign bank_write[j] = input_write
                || (state != S_INPUT && w_valid && !last_layer && takes_result);
            assign bank_write_data[j*EBITS +: EBITS] =
                state == S_INPUT ? {{(EBITS-8){1'b0}}, in_pixel} :
                (flags[B_POOL] && !w_first && held > code) ? held : code;
        end
    endgenerate

    assign in_ready  = state == S_INPUT;
    assign out_valid = state == S_OUTPUT;

    always @(posedge clk) begin
        if (rst) begin
            state <= S_INPUT;
            layer <= {LAYW{1'b0}};
            counting <= 1'b0;
            cycles <= 32'd0;
            input_count <= 32'd0;
            ready <= 2'b00;
            l_active <= 1'b0;
            i_active <= 1'b0;
            p_valid <= 1'b0;
            w_valid <= 1'b0;
            logits <= {CLASSES*LW{1'b0}};
        end else begin
            if (counting && state != S_OUTPUT)
                cycles <= cycles + 1;
            // Pipeline: issue -> post-processing -> write.
            p_valid <= i_go && i_last_chunk;
            w_valid <= p_valid;
            w_results <= results;
            w_g <= p_g;
            w_addr <= p_addr;
            w_first <= p_first;
            w_skip <= p_skip;
            if (w_valid && last_layer)
                for (q = 0; q < PE; q = q + 1)
                    if (w_g * PE + q < CLASSES)
                        logits[(w_g * PE + q) * LW +: LW] <= w_results[q*OUTW +: LW];

            case (state)
                S_INPUT: if (in_valid) begin
                    if (!counting) begin
                        counting <= 1'b1;
                        cycles <= 32'd1;
                    end
                    input_count <= input_count + 1;
                    if (input_count == INPUTS - 1) begin
                        input_count <= 32'd0;
                        state <= S_START;
                    end
                end
                S_START: begin
                    state <= S_RUN;
                    l_active <= 1'b1;
                    l_pix <= 32'd0; l_oy <= 32'd0; l_ox <= 32'd0; l_ky <= 32'd0;
                    l_fresh <= 1'b1; l_wp <= 32'd0;
                    i_active <= 1'b1;
                    i_pix <= 32'd0; i_g <= 32'd0; i_t <= 32'd0; i_waddr <= w_base;
                    i_oy <= 32'd0; i_ox <= 32'd0; i_py <= 32'd0; i_px <= 32'd0;
                    i_ry <= 32'd0; i_rx <= 32'd0;
                    ready <= 2'b00;
                end
                S_DRAIN1: state <= S_DRAIN2;
                S_DRAIN2: begin
                    if (last_layer) begin
                        state <= S_OUTPUT;
                    end else begin
                        layer <= layer + 1'b1;
                        state <= S_START;
                    end
                end
                S_OUTPUT: if (out_ready) begin
                    state <= S_INPUT;
                    layer <= {LAYW{1'b0}};
                    counting <= 1'b0;
                end
                default: ;
            endcase

            // Loader: one step of the current segment.
            if (l_go) begin
                for (q = 0; q < SIMD; q = q + 1)
                    if (q < e_count) begin
                        if (l_bank)
                            window1[l_wp + q] <= e_seg == SEG_RUN
                                ? {1'b1, load_word[(e_offset32 + q) * EBITS +: EBITS]}
                                : {(EBITS+1){1'b0}};
                        else
                            window0[l_wp + q] <= e_seg == SEG_RUN
                                ? {1'b1, load_word[(e_offset32 + q) * EBITS +: EBITS]}
                                : {(EBITS+1){1'b0}};
                    end
                l_wp <= l_wp + e_count;
                if (e_left != 0) begin
                    l_seg <= e_seg;
                    l_rem <= e_left;
                    l_cur <= e_cur + e_count;
                    l_fresh <= 1'b0;
                end else if (!l_row_done) begin
                    // Left padding done: the run follows; the run done: right padding.
                    l_fresh <= 1'b0;
                    if (e_seg == SEG_LEFT) begin
                        l_seg <= SEG_RUN;
                        l_rem <= run_len;
                        l_cur <= run_cur;
                    end else begin
                        l_seg <= SEG_RIGHT;
                        l_rem <= (kernel - kx1) * in_c;
                    end
                end else if (!l_pixel_done) begin
                    l_ky <= l_ky + 1;
                    l_fresh <= 1'b1;
                end else begin
                    l_ky <= 32'd0;
                    l_fresh <= 1'b1;
                    l_wp <= 32'd0;
                    l_pix <= l_pix + 1;
                    if (l_ox == out_w - 1) begin
                        l_ox <= 32'd0;
                        l_oy <= l_oy + 1;
                    end else begin
                        l_ox <= l_ox + 1;
                    end
                    if (l_pix == pixels - 1)
                        l_active <= 1'b0;
                end
            end

            // Issuer: one chunk of one group of the current pixel.
            if (i_go) begin
                i_waddr <= i_waddr + 1;
                if (i_last_chunk) begin
                    p_g <= i_g;
                    p_first <= i_ry == 0 && i_rx == 0;
                    p_skip <= flags[B_POOL] && (i_py >= pool_h || i_px >= pool_w);
                    p_addr <= (flags[B_POOL] ? i_py * pool_w + i_px : i_oy * out_w + i_ox) * out_c
                              + i_g * PE;
                end
                if (!i_last_chunk) begin
                    i_t <= i_t + 1;
                end else begin
                    i_t <= 32'd0;
                    if (!i_pixel_done) begin
                        i_g <= i_g + 1;
                    end else begin
                        i_g <= 32'd0;
                        i_waddr <= w_base;
                        i_pix <= i_pix + 1;
                        if (i_ox == out_w - 1) begin
                            i_ox <= 32'd0; i_px <= 32'd0; i_rx <= 32'd0;
                            i_oy <= i_oy + 1;
                            if (i_ry == pool - 1) begin
                                i_ry <= 32'd0;
                                i_py <= i_py + 1;
                            end else begin
                                i_ry <= i_ry + 1;
                            end
                        end else begin
                            i_ox <= i_ox + 1;
                            if (i_rx == pool - 1) begin
                                i_rx <= 32'd0;
                                i_px <= i_px + 1;
                            end else begin
                                i_rx <= i_rx + 1;
                            end
                        end
                        if (i_layer_done) begin
                            i_active <= 1'b0;
                            state <= S_DRAIN1;
                        end
                    end
                end
            end
            // Bank handshake: the loader fills a free bank, the issuer frees the one it used.
            if (l_go && l_pixel_done)
                ready[l_bank] <= 1'b1;
            if (i_go && i_pixel_done)
                ready[i_bank] <= 1'b0;
        end
    end
endmodule
