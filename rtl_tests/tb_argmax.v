// Checks qnnc_argmax: the index of the largest signed logit, the first one on ties. Each
// vector line is
//   expected_index logit_0 ... logit_(CLASSES-1)
// with the logits as signed decimals.
module tb_argmax #(
    parameter CLASSES = 10,
    parameter LW      = 12,
    parameter CW      = 4
);
    `include "vectors.vh"

    reg [CLASSES*LW-1:0] logits;
    reg [CLASSES*LW-1:0] next_logits;
    wire [CW-1:0]        index;

    qnnc_argmax #(.CLASSES(CLASSES), .LW(LW), .CW(CW)) argmax (.logits(logits), .index(index));

    reg signed [63:0] expected, logit;
    integer c;
    initial begin
        open_vectors;
        while ($fscanf(vectors, "%d", expected) == 1) begin
            line = line + 1;
            for (c = 0; c < CLASSES; c = c + 1) begin
                if ($fscanf(vectors, "%d", logit) != 1)
                    reject_vector("missing logit");
                if (!fits_signed(logit, LW))
                    reject_vector("logit wider than LW");
                next_logits[c*LW +: LW] = logit[LW-1:0];
            end
            logits = next_logits;
            #1;
            checked = checked + 1;
            if ({{(64-CW){1'b0}}, index} !== expected) begin
                errors = errors + 1;
                if (errors <= MAX_SHOWN)
                    $display("mismatch on line %0d: index %0d, expected %0d", line, index,
                             expected);
            end
        end
        report;
    end
endmodule
