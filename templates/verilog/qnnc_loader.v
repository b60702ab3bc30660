// The window loader: for every output pixel of a convolution it copies the receptive field
// (rows ky of the kernel, each K*C elements: zeros left of the image, a run of elements inside
// it, zeros right of it) from the source activation buffer into a bank of the window memory,
// as aligned rows of SIMD {valid, code} elements. Rows of the window are step_ky elements apart
// in the source (a row of the input); an addition's window has two rows at the same place, the
// second read from the skip tensor's region (`second`).
//
// All addresses are in elements and advance by additions of precomputed strides. Each cycle
// it takes one piece: up to SIMD elements that neither cross a row of the source buffer (runs
// only) nor a row of the window. A piece's source row is read at once; one cycle later the
// piece is rotated into place, merged into the window row being built, and the row is written
// when it is full or the pixel is complete. Pixels are visited in pooling order (the P x P
// outputs of one pooling window after each other) and go round the BANKS banks: a bank
// is claimed (`claim`) before its first piece, and reported full (`filled`) with its last
// write; the core frees it when the PE array has read it.
//
// The window's columns (the zeros left of the image, the run, the zeros right of it) depend
// on the pixel only. They are computed one pixel ahead, in two registered stages from the
// position counters, which therefore hold the coming pixel, not the current one: a pixel's
// last piece waits until its successor's geometry is ready, at least three cycles after the
// loader moved to it (src/schedule: GEOMETRY_CYCLES). At the start of a layer the loader
// first moves to pixel 0 (priming), two cycles after `start`.
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
    input  wire [`QNNC_XW-1:0]       step_ky,
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
    output wire                      second,
    input  wire [SIMD*EBITS-1:0]     src_word,
    // The window memory's write port.
    output reg                       win_write,
    output reg  [WIN_AW-1:0]         win_addr,
    output reg  [SIMD*(EBITS+1)-1:0] win_data
);
    localparam XW = `QNNC_XW;
    localparam [1:0] SEG_ZERO = 2'd0, SEG_LEFT = 2'd1, SEG_RUN = 2'd2, SEG_RIGHT = 2'd3;
    localparam [WIN_AW-1:0] BANK_ROWS = TMAX;
    localparam [1:0] LAST_BANK = BANKS - 1;

    localparam [1:0] READY_AGE = 2;  // the geometry's two stages, then the cycle of the move
    reg                          active, primed, mid, current_last;
    reg [1:0]                    age;  // cycles since the last move to a pixel, saturating
    reg [1:0]                    bank;
    reg [WIN_AW-1:0]             bank_base;
    reg [`QNNC_P_LAST_W-1:0]     rx, ry;
    reg [`QNNC_PW_LAST_W-1:0]    px;
    reg [`QNNC_PH_LAST_W-1:0]    py;
    reg [`QNNC_K_LAST_W-1:0]     ky;
    reg signed [XW-1:0]          ex, ex_px, ey, ey_py, eyk, cur, rem;
    reg [1:0]                    seg;
    reg [WPW-1:0]                wp;

    // The position counters (rx, ry, px, py; ex, ey: where the window starts) hold the coming
    // pixel. Where the pixel after it starts (pooling order), from the counters alone.
    wire last_rx = rx == p_last, last_ry = ry == p_last;
    wire last_px = px == pw_last, last_py = py == ph_last;
    wire coming_last = last_rx && last_ry && last_px && last_py;
    wire signed [XW-1:0] next_ex = !last_rx ? ex + $signed(step_rx) :
                                   !last_ry ? ex_px :
                                   !last_px ? ex_px + $signed(step_px) : $signed(ex0);
    wire signed [XW-1:0] next_ey = !last_rx ? ey :
                                   !last_ry ? ey + $signed(step_ry) :
                                   !last_px ? ey_py : ey_py + $signed(step_py);

    // The coming pixel's columns, stage 1: the zeros left of the image and the columns up to
    // its right edge, each clamped to [0, K*C].
    wire signed [XW-1:0] kc_s   = kc;
    wire signed [XW-1:0] neg_ex = -ex;
    wire signed [XW-1:0] edge_raw = $signed(wc) - ex;
    reg signed [XW-1:0] ahead_left, ahead_right, ahead_ex, ahead_exy, ahead_ey;
    always @(posedge clk) begin
        ahead_left <= neg_ex <= 0 ? {XW{1'b0}} : (neg_ex >= kc_s ? kc_s : neg_ex);
        ahead_right <= edge_raw <= 0 ? {XW{1'b0}} : (edge_raw >= kc_s ? kc_s : edge_raw);
        ahead_ex <= ex;
        ahead_ey <= ey;
        ahead_exy <= ex + ey;
    end
    // Stage 2: the run between, where it starts, and whether the first row is outside.
    function row_is_outside(input signed [XW-1:0] row, input empty);
        row_is_outside = row < 0 || row >= $signed(hwc) || empty;
    endfunction
    reg signed [XW-1:0] next_left, next_run_length, next_right_zeros, next_run_base;
    reg signed [XW-1:0] next_run_start;
    reg next_no_run, next_right_full, next_row_outside;
    always @(posedge clk) begin
        next_left <= ahead_left;
        next_run_length <= ahead_right - ahead_left;
        next_right_zeros <= kc_s - ahead_right;
        next_right_full <= ahead_right >= kc_s;
        next_no_run <= ahead_right <= ahead_left;
        next_run_base <= ahead_ex + ahead_left;
        next_row_outside <= row_is_outside(ahead_ey, ahead_right <= ahead_left);
        next_run_start <= ahead_exy + ahead_left;
    end
    wire ahead_ready = age == READY_AGE;

    // The current pixel's columns, and where the run of its current row starts.
    reg signed [XW-1:0] left, run_length, right_zeros, run_base;
    reg no_run, right_full;
    reg signed [XW-1:0] run_start;
    wire signed [XW-1:0] next_row = eyk + $signed(step_ky);
    wire following_row_outside = row_is_outside(next_row, no_run);
    wire next_pixel, next_row_of_pixel;
    // A row's first segment: all zeros outside the image (or in a window with no run), else
    // the left padding if there is one, else the run.
    function [1:0] first_segment(input outside_row, input signed [XW-1:0] left_zeros);
        first_segment = outside_row ? SEG_ZERO : (left_zeros != 0 ? SEG_LEFT : SEG_RUN);
    endfunction
    function signed [XW-1:0] first_length(input outside_row, input signed [XW-1:0] left_zeros,
                                          input signed [XW-1:0] run_elements);
        first_length = outside_row ? kc_s : (left_zeros != 0 ? left_zeros : run_elements);
    endfunction
    // Moving to the coming pixel: at the end of a pixel, or once at the start (priming).
    wire prime = active && !primed && ahead_ready;
    wire advance = next_pixel || prime;
    always @(posedge clk)
        if (advance) begin
            left <= next_left;
            run_length <= next_run_length;
            right_zeros <= next_right_zeros;
            right_full <= next_right_full;
            no_run <= next_no_run;
            run_base <= next_run_base;
            run_start <= next_run_start;
        end else if (next_row_of_pixel) begin
            run_start <= next_row + run_base;
        end

    // This cycle's piece: seg, rem and cur are registers that always describe it (a row's
    // first segment is set up when the loader moves to the row).
    // Offsets within a row and the room left in it are at most SIMD: OW bits. A piece fits
    // the room left in the window row and, for a run, in the source row.
    localparam OW = SIMD_LOG2 + 1;
    localparam [OW-1:0] ROW_LANES = SIMD;
    localparam [OW-1:0] OFF_MASK = SIMD - 1;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [XW-1:0] wp_wide  = {{(XW-WPW){1'b0}}, wp};  // its offset within a row
    /* verilator lint_on UNUSEDSIGNAL */
    wire [OW-1:0] wp_off   = wp_wide[OW-1:0] & OFF_MASK;
    wire [OW-1:0] cur_off  = cur[OW-1:0] & OFF_MASK;
    wire [OW-1:0] window_room = ROW_LANES - wp_off;
    wire [OW-1:0] source_room = ROW_LANES - cur_off;
    wire in_run = seg == SEG_RUN;
    // Whether this piece ends its segment: comparisons of OW bits in parallel, on which the
    // control waits; the count and what remains are data.
    wire [XW-1:0] rem_u    = rem;
    wire [OW-1:0] rem_low  = rem_u[OW-1:0];
    /* verilator lint_off CMPCONST */  // constant with one lane (SIMD = 1)
    wire ends_segment      = (rem_u >> OW) == 0 && rem_low <= window_room
                             && (!in_run || rem_low <= source_room);
    wire [OW-1:0] room     = in_run && source_room < window_room ? source_room : window_room;
    /* verilator lint_on CMPCONST */
    wire [OW-1:0] count_low = ends_segment ? rem_low : room;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [XW-1:0] count    = {{(XW-OW){1'b0}}, count_low};  // its WPW bits advance wp
    /* verilator lint_on UNUSEDSIGNAL */
    // A piece that does not end its segment takes all the room: what remains after it does
    // not wait for the comparison.
    wire [XW-1:0] room_wide = {{(XW-OW){1'b0}}, room};
    wire signed [XW-1:0] remaining = rem - $signed(room_wide);
    wire row_done = ends_segment && (seg == SEG_ZERO || seg == SEG_RIGHT ||
                                     (seg == SEG_RUN && right_full));
    wire pixel_done = row_done && ky == k_last;
    wire go = run && active && primed && (mid || !busy[bank]) && (!pixel_done || ahead_ready);
    assign next_pixel = go && pixel_done;
    assign next_row_of_pixel = go && row_done && !pixel_done;
    assign claim = go && !mid;
    assign claim_bank = bank;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [XW-1:0] cur_row = cur >>> SIMD_LOG2;  // the buffer's depth bounds the used bits
    /* verilator lint_on UNUSEDSIGNAL */
    assign src_row = cur_row[SRC_AW-1:0];
    assign second = ky != 0;

    // The piece in flight: its source word arrives this cycle.
    reg                  f_valid, f_run, f_write, f_last;
    reg [1:0]            f_bank;
    reg [WIN_AW-1:0]     f_base;
    reg [OW-1:0]         f_count, f_wp_off;
    /* verilator lint_off UNUSEDSIGNAL */
    reg [OW-1:0]         f_shift;  // below SIMD: its low SIMD_LOG2 bits
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
            localparam [OW:0] LANE = k;
            wire takes = f_run && LANE >= {1'b0, f_wp_off}
                         && LANE < {1'b0, f_wp_off} + {1'b0, f_count};
            assign merged[k*(EBITS+1) +: EBITS+1] = takes
                ? {1'b1, rotated[k*EBITS +: EBITS]} : partial[k*(EBITS+1) +: EBITS+1];
        end
    endgenerate


    always @(posedge clk) begin
        if (rst || start) begin
            active <= !direct && start;
            primed <= 1'b0;
            age <= 2'd0;
            current_last <= 1'b0;
            mid <= 1'b0; bank <= 2'd0; bank_base <= {WIN_AW{1'b0}};
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
            f_run    <= seg == SEG_RUN;
            f_count  <= count_low;
            f_wp_off <= wp_off;
            f_shift  <= (wp_off - cur_off) & OFF_MASK;
            f_row    <= wp >> SIMD_LOG2;
            f_write  <= count_low == window_room || pixel_done;
            f_last   <= pixel_done;
            f_bank   <= bank;
            f_base   <= bank_base;

            if (go) begin
                mid <= !pixel_done;
                wp <= wp + count[WPW-1:0];
                if (!ends_segment) begin
                    rem <= remaining;
                    cur <= cur + $signed(room_wide);
                end else if (!row_done) begin
                    // Left padding done: the run follows; the run done: right padding.
                    if (seg == SEG_LEFT) begin
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
                    seg <= first_segment(following_row_outside, left);
                    rem <= first_length(following_row_outside, left, run_length);
                    cur <= next_row + run_base;
                end else begin
                    ky <= 0;
                    wp <= 0;
                    bank <= bank == LAST_BANK ? 2'd0 : bank + 2'd1;
                    bank_base <= bank == LAST_BANK ? {WIN_AW{1'b0}} : bank_base + BANK_ROWS;
                    if (current_last)
                        active <= 1'b0;
                end
            end

            // Moving to the coming pixel: its first row, and the counters to the one after.
            age <= advance ? 2'd0 : (ahead_ready ? age : age + 2'd1);
            if (advance) begin
                primed <= 1'b1;
                current_last <= coming_last;
                eyk <= ey;
                seg <= first_segment(next_row_outside, next_left);
                rem <= first_length(next_row_outside, next_left, next_run_length);
                cur <= next_run_start;
                ex <= next_ex;
                ey <= next_ey;
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
                        end
                    end
                end
            end
        end
    end
endmodule
