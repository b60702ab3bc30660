// The window loader: for every output pixel of a convolution it copies the receptive field
// (rows ky of the kernel, each K*C elements: zeros left of the image, a run of elements inside
// it, zeros right of it) from the source activation buffer into a bank of the window memory,
// as aligned rows of SIMD {valid, code} elements.
//
// All addresses are in elements and advance by additions of precomputed strides. Each cycle
// it takes one piece: up to SIMD elements that neither cross a row of the source buffer (runs
// only) nor a row of the window. A piece's source row is read at once; one cycle later the
// piece is rotated into place, merged into the window row being built, and the row is written
// when it is full or the pixel is complete. Pixels are visited in pooling order (the P x P
// outputs of one pooling window after each other) and go round the BANKS banks: a bank
// is claimed (`claim`) before its first piece, and reported full (`filled`) with its last
// write; the core frees it when the PE array has read it.
`include "qnnc_layout.vh"
module qnnc_loader #(
    parameter SIMD      = 16,
    parameter SIMD_LOG2 = 4,
    parameter EBITS     = 8,
    parameter TMAX      = 18,
    parameter BANKS     = 3,
    parameter WIN_AW    = 6,
    parameter WPW       = 10,
    parameter SRC_AW    = 6
) (
    input  wire                      clk,
    input  wire                      rst,
    input  wire                      start,
    input  wire                      run,
    // The layer's geometry, from its descriptor.
    input  wire                      direct,
    input  wire [`QNNC_XW-1:0]       kc,
    input  wire [`QNNC_XW-1:0]       wc,
    input  wire [`QNNC_XW-1:0]       hwc,
    input  wire [`QNNC_XW-1:0]       ex0,
    input  wire [`QNNC_XW-1:0]       ey0,
    input  wire [`QNNC_XW-1:0]       step_rx,
    input  wire [`QNNC_XW-1:0]       step_ry,
    input  wire [`QNNC_XW-1:0]       step_px,
    input  wire [`QNNC_XW-1:0]       step_py,
    input  wire [`QNNC_K_LAST_W-1:0] k_last,
    input  wire [`QNNC_P_LAST_W-1:0] p_last,
    input  wire [`QNNC_PW_LAST_W-1:0] pw_last,
    input  wire [`QNNC_PH_LAST_W-1:0] ph_last,
    // Bank handshake with the core.
    input  wire [BANKS-1:0]          busy,
    output wire                      claim,
    output wire [1:0]                claim_bank,
    output reg                       filled,
    output reg  [1:0]                filled_bank,
    // The source activation buffer (registered read).
    output wire [SRC_AW-1:0]         src_row,
    input  wire [SIMD*EBITS-1:0]     src_word,
    // The window memory's write port.
    output reg                       win_write,
    output reg  [WIN_AW-1:0]         win_addr,
    output reg  [SIMD*(EBITS+1)-1:0] win_data
);
    localparam XW = `QNNC_XW;
    localparam [1:0] SEG_ZERO = 2'd0, SEG_LEFT = 2'd1, SEG_RUN = 2'd2, SEG_RIGHT = 2'd3;
    localparam [XW-1:0] LANES = SIMD;
    localparam [XW-1:0] LANE_MASK = SIMD - 1;
    localparam [WIN_AW-1:0] BANK_ROWS = TMAX;
    localparam [1:0] LAST_BANK = BANKS - 1;

    reg                          active, mid, fresh;
    reg [1:0]                    bank;
    reg [WIN_AW-1:0]             bank_base;
    reg [`QNNC_P_LAST_W-1:0]     rx, ry;
    reg [`QNNC_PW_LAST_W-1:0]    px;
    reg [`QNNC_PH_LAST_W-1:0]    py;
    reg [`QNNC_K_LAST_W-1:0]     ky;
    reg signed [XW-1:0]          ex, ex_px, ey, ey_py, eyk, cur, rem;
    reg [1:0]                    seg;
    reg [WPW-1:0]                wp;

    // Where the next pixel's window starts (pooling order), from the position counters alone.
    wire last_rx = rx == p_last, last_ry = ry == p_last;
    wire last_px = px == pw_last, last_py = py == ph_last;
    wire signed [XW-1:0] next_ex = !last_rx ? ex + $signed(step_rx) :
                                   !last_ry ? ex_px :
                                   !last_px ? ex_px + $signed(step_px) : $signed(ex0);
    wire signed [XW-1:0] next_ey = !last_rx ? ey :
                                   !last_ry ? ey + $signed(step_ry) :
                                   !last_px ? ey_py : ey_py + $signed(step_py);

    // A window's columns: the elements left of the image, up to its right edge, the run
    // between, and where the run starts relative to the row. They depend on the pixel only,
    // so they are computed for the next pixel (or the first, at start) and registered; the
    // row's own values are registered as the loader moves from row to row.
    wire signed [XW-1:0] kc_s   = kc;
    wire signed [XW-1:0] geo_ex = start ? $signed(ex0) : next_ex;
    wire signed [XW-1:0] geo_ey = start ? $signed(ey0) : next_ey;
    wire signed [XW-1:0] neg_ex = -geo_ex;
    wire signed [XW-1:0] geo_left = neg_ex <= 0 ? {XW{1'b0}} : (neg_ex >= kc_s ? kc_s : neg_ex);
    wire signed [XW-1:0] edge_raw = $signed(wc) - geo_ex;
    wire signed [XW-1:0] geo_right = edge_raw <= 0 ? {XW{1'b0}} :
                                     (edge_raw >= kc_s ? kc_s : edge_raw);
    wire signed [XW-1:0] geo_base = geo_ex + geo_left;
    reg signed [XW-1:0] left, run_length, right_zeros, run_base;
    reg no_run, right_full;
    // The current row: outside the image (or a window with no run), and where its run starts.
    reg row_outside;
    reg signed [XW-1:0] run_start;
    function row_is_outside(input signed [XW-1:0] row, input empty);
        row_is_outside = row < 0 || row >= $signed(hwc) || empty;
    endfunction
    wire signed [XW-1:0] next_row = eyk + $signed(wc);
    wire outside = row_outside;
    wire next_pixel, next_row_of_pixel;
    always @(posedge clk)
        if (start || next_pixel) begin
            left <= geo_left;
            run_length <= geo_right - geo_left;
            right_zeros <= kc_s - geo_right;
            right_full <= geo_right >= kc_s;
            no_run <= geo_right <= geo_left;
            run_base <= geo_base;
            row_outside <= row_is_outside(geo_ey, geo_right <= geo_left);
            run_start <= geo_ey + geo_base;
        end else if (next_row_of_pixel) begin
            row_outside <= row_is_outside(next_row, no_run);
            run_start <= next_row + run_base;
        end

    // This cycle's piece.
    wire [1:0] e_seg = !fresh ? seg : outside ? SEG_ZERO : (left != 0 ? SEG_LEFT : SEG_RUN);
    wire signed [XW-1:0] e_rem = !fresh ? rem : outside ? kc_s : (left != 0 ? left : run_length);
    wire signed [XW-1:0] e_cur = fresh ? run_start : cur;
    wire [XW-1:0] wp_wide = {{(XW-WPW){1'b0}}, wp};
    wire [XW-1:0] wp_off  = wp_wide & LANE_MASK;
    wire [XW-1:0] cur_off = e_cur & LANE_MASK;
    wire [XW-1:0] used    = (e_seg == SEG_RUN && cur_off > wp_off) ? cur_off : wp_off;
    wire [XW-1:0] room    = LANES - used;
    // Whether this piece ends its segment: one comparison, on which the control waits; the
    // count and what remains are data.
    wire ends_segment     = $unsigned(e_rem) <= room;
    wire [XW-1:0] count   = ends_segment ? e_rem : room;
    wire signed [XW-1:0] remaining = e_rem - $signed(count);
    wire row_done = ends_segment && (e_seg == SEG_ZERO || e_seg == SEG_RIGHT ||
                                     (e_seg == SEG_RUN && right_full));
    wire pixel_done = row_done && ky == k_last;
    wire go = run && active && (mid || !busy[bank]);
    assign next_pixel = go && pixel_done;
    assign next_row_of_pixel = go && row_done && !pixel_done;
    assign claim = go && !mid;
    assign claim_bank = bank;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [XW-1:0] cur_row = e_cur >>> SIMD_LOG2;  // the buffer's depth bounds the used bits
    /* verilator lint_on UNUSEDSIGNAL */
    assign src_row = cur_row[SRC_AW-1:0];

    // The piece in flight: its source word arrives this cycle.
    reg                  f_valid, f_run, f_write, f_last;
    reg [1:0]            f_bank;
    reg [WIN_AW-1:0]     f_base;
    reg [XW-1:0]         f_count, f_wp_off;
    /* verilator lint_off UNUSEDSIGNAL */
    reg [XW-1:0]         f_shift;  // below SIMD: its low SIMD_LOG2 bits
    reg [WPW-1:0]        f_row;    // below TMAX: the window's address bits
    /* verilator lint_on UNUSEDSIGNAL */
    reg [SIMD*(EBITS+1)-1:0] partial;

    // The source word rotated so that element cur_off + q lands in lane wp_off + q.
    localparam RBW = SIMD_LOG2 > 0 ? SIMD_LOG2 : 1;
    wire [SIMD*EBITS-1:0] rotated;
    qnnc_rotate #(.LANES(SIMD), .LANES_LOG2(SIMD_LOG2), .EW(EBITS), .BW(RBW)) rotate (
        .word(src_word), .by(f_shift[RBW-1:0]), .rotated(rotated));

    wire [SIMD*(EBITS+1)-1:0] merged;
    genvar k;
    generate
        for (k = 0; k < SIMD; k = k + 1) begin : g_merge
            localparam [XW-1:0] LANE = k;
            wire takes = f_run && LANE >= f_wp_off && LANE < f_wp_off + f_count;
            assign merged[k*(EBITS+1) +: EBITS+1] = takes
                ? {1'b1, rotated[k*EBITS +: EBITS]} : partial[k*(EBITS+1) +: EBITS+1];
        end
    endgenerate


    always @(posedge clk) begin
        if (rst || start) begin
            active <= !direct && start;
            mid <= 1'b0; bank <= 2'd0; bank_base <= {WIN_AW{1'b0}}; fresh <= 1'b1;
            rx <= 0; ry <= 0; px <= 0; py <= 0; ky <= 0;
            ex <= ex0; ex_px <= ex0; ey <= ey0; ey_py <= ey0; eyk <= ey0;
            cur <= 0; rem <= 0; seg <= SEG_ZERO; wp <= 0;
            f_valid <= 1'b0;
            win_write <= 1'b0;
            filled <= 1'b0;
            partial <= {SIMD*(EBITS+1){1'b0}};
        end else begin
            // The piece of the last cycle: merge it, and write the row when it is complete.
            win_write <= f_valid && f_write;
            win_addr  <= f_base + f_row[WIN_AW-1:0];
            win_data  <= merged;
            filled <= f_valid && f_last;
            filled_bank <= f_bank;
            if (f_valid)
                partial <= f_write ? {SIMD*(EBITS+1){1'b0}} : merged;

            f_valid  <= go;
            f_run    <= e_seg == SEG_RUN;
            f_count  <= count;
            f_wp_off <= wp_off;
            f_shift  <= (wp_off - cur_off) & LANE_MASK;
            f_row    <= wp >> SIMD_LOG2;
            f_write  <= wp_off + count == LANES || pixel_done;
            f_last   <= pixel_done;
            f_bank   <= bank;
            f_base   <= bank_base;

            if (go) begin
                mid <= !pixel_done;
                wp <= wp + count[WPW-1:0];
                if (!ends_segment) begin
                    seg <= e_seg;
                    rem <= remaining;
                    cur <= e_cur + $signed(count);
                    fresh <= 1'b0;
                end else if (!row_done) begin
                    // Left padding done: the run follows; the run done: right padding.
                    fresh <= 1'b0;
                    if (e_seg == SEG_LEFT) begin
                        seg <= SEG_RUN;
                        rem <= run_length;
                        cur <= run_start;
                    end else begin
                        seg <= SEG_RIGHT;
                        rem <= right_zeros;
                    end
                end else if (!pixel_done) begin
                    ky <= ky + 1'b1;
                    eyk <= next_row;
                    fresh <= 1'b1;
                end else begin
                    ky <= 0;
                    fresh <= 1'b1;
                    wp <= 0;
                    bank <= bank == LAST_BANK ? 2'd0 : bank + 2'd1;
                    bank_base <= bank == LAST_BANK ? {WIN_AW{1'b0}} : bank_base + BANK_ROWS;
                    ex <= next_ex;
                    ey <= next_ey;
                    eyk <= next_ey;
                    if (!last_rx) begin
                        rx <= rx + 1'b1;
                    end else begin
                        rx <= 0;
                        if (!last_ry) begin
                            ry <= ry + 1'b1;
                        end else begin
                            ry <= 0;
                            if (!last_px) begin
                                px <= px + 1'b1;
                                ex_px <= ex_px + $signed(step_px);
                            end else begin
                                px <= 0;
                                ex_px <= ex0;
                                py <= py + 1'b1;
                                ey_py <= ey_py + $signed(step_py);
                                if (last_py)
                                    active <= 1'b0;
                            end
                        end
                    end
                end
            end
        end
    end
endmodule
