// Checks qnnc_lane: the product of a decoded weight code and a decoded activation code.
// One lane is instantiated for every weight width WBITS and element width EBITS in
// {1, 2, 4, 8}: the design's lanes use EBITS = max(ABITS, 8), the narrower ones check that the
// decoding holds at any element width. Each vector line names the lane it drives:
//   wbits ebits w w_bipolar mask a a_valid a_bipolar expected_product
// with w and a as unsigned codes and the product as a signed decimal.
module tb_lane;
    `include "vectors.vh"

    localparam WIDTHS = 4;
    localparam LANES = WIDTHS * WIDTHS;

    reg [7:0] w;
    reg       w_bipolar;
    reg       mask;
    reg [7:0] a;
    reg       a_valid;
    reg       a_bipolar;
    // Every lane's product sign-extended to 32 bits; lane (wi, ei) at slot wi * WIDTHS + ei.
    wire [LANES*32-1:0] products;

    genvar wi, ei;
    generate
        for (wi = 0; wi < WIDTHS; wi = wi + 1) begin : g_weight
            for (ei = 0; ei < WIDTHS; ei = ei + 1) begin : g_element
                localparam WBITS = 1 << wi;
                localparam EBITS = 1 << ei;
                localparam PW = WBITS + EBITS + 2;
                wire signed [PW-1:0] product;
                qnnc_lane #(.WBITS(WBITS), .EBITS(EBITS)) lane (
                    .w(w[WBITS-1:0]),
                    .w_bipolar(w_bipolar),
                    .mask(mask),
                    .a(a[EBITS-1:0]),
                    .a_valid(a_valid),
                    .a_bipolar(a_bipolar),
                    .product(product)
                );
                assign products[(wi*WIDTHS+ei)*32 +: 32] = {{(32-PW){product[PW-1]}}, product};
            end
        end
    endgenerate

    // The slot of a width in {1, 2, 4, 8}, or -1 for any other width.
    function integer width_slot(input integer bits);
        width_slot = bits == 1 ? 0 : bits == 2 ? 1 : bits == 4 ? 2 : bits == 8 ? 3 : -1;
    endfunction

    integer wbits, ebits, slot;
    reg signed [63:0] w_code, w_bipolar_flag, mask_flag, a_code, a_valid_flag, a_bipolar_flag;
    reg signed [63:0] expected, product;
    initial begin
        open_vectors;
        while ($fscanf(vectors, "%d", wbits) == 1) begin
            line = line + 1;
            if ($fscanf(vectors, "%d %d %d %d %d %d %d %d", ebits, w_code, w_bipolar_flag,
                        mask_flag, a_code, a_valid_flag, a_bipolar_flag, expected) != 8)
                reject_vector("missing fields");
            if (width_slot(wbits) < 0 || width_slot(ebits) < 0)
                reject_vector("no lane of these widths");
            if (!fits_unsigned(w_code, wbits) || !fits_unsigned(a_code, ebits))
                reject_vector("code wider than its lane");
            if (!fits_unsigned(w_bipolar_flag, 1) || !fits_unsigned(mask_flag, 1)
                    || !fits_unsigned(a_valid_flag, 1)
                    || !fits_unsigned(a_bipolar_flag, 1))
                reject_vector("flag not 0 or 1");
            w = w_code[7:0];
            w_bipolar = w_bipolar_flag[0];
            mask = mask_flag[0];
            a = a_code[7:0];
            a_valid = a_valid_flag[0];
            a_bipolar = a_bipolar_flag[0];
            #1;
            slot = width_slot(wbits) * WIDTHS + width_slot(ebits);
            product = {{32{products[slot*32+31]}}, products[slot*32 +: 32]};
            checked = checked + 1;
            if (product !== expected) begin
                errors = errors + 1;
                if (errors <= MAX_SHOWN)
                    $display("mismatch on line %0d: WBITS %0d EBITS %0d w %0d w_bipolar %0d mask %0d a %0d a_valid %0d a_bipolar %0d: product %0d, expected %0d",
                             line, wbits, ebits, w_code, w_bipolar_flag, mask_flag, a_code,
                             a_valid_flag, a_bipolar_flag, product, expected);
            end
        end
        report;
    end
endmodule
