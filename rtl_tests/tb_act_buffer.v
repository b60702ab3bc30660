// Checks qnnc_act_buffer: element e lives in bank e % SIMD, row e / SIMD. Elements are written
// through the per-bank ports and read back through the row port and the per-bank ports. Each
// vector line is one step, led by its kind:
//   0 write_0 row_0 data_0 ... write_(SIMD-1) row_(SIMD-1) data_(SIMD-1)
//       drive each bank's write enable, row and data, then one clock edge (not a check);
//   1 row expected_0 ... expected_(SIMD-1)
//       check the row port: bank b's element of that row;
//   2 row_0 expected_0 ... row_(SIMD-1) expected_(SIMD-1)
//       check the per-bank read ports, each bank at its own row, with no write enabled.
module tb_act_buffer #(
    parameter SIMD  = 4,
    parameter EBITS = 8,
    parameter ROWS  = 12,
    parameter RW    = 4
);
    `include "vectors.vh"

    localparam WRITE = 0, CHECK_ROW = 1, CHECK_BANKS = 2;

    reg                   clk;
    reg [RW-1:0]          row;
    wire [SIMD*EBITS-1:0] row_data;
    reg [SIMD*RW-1:0]     bank_row;
    wire [SIMD*EBITS-1:0] bank_data;
    reg [SIMD-1:0]        write;
    reg [SIMD*EBITS-1:0]  write_data;
    reg [SIMD*RW-1:0]     next_bank_row;
    reg [SIMD-1:0]        next_write;
    reg [SIMD*EBITS-1:0]  next_write_data;

    qnnc_act_buffer #(.SIMD(SIMD), .EBITS(EBITS), .ROWS(ROWS), .RW(RW)) buffer (
        .clk(clk), .row(row), .row_data(row_data), .bank_row(bank_row), .bank_data(bank_data),
        .write(write), .write_data(write_data));

    reg signed [63:0] kind, write_flag, row_value, data_value;
    integer b, wrong_banks;
    reg [SIMD*EBITS-1:0] expected;
    reg [SIMD*EBITS-1:0] observed;

    // Reads one "row element" pair of a bank check into bank b's read row and expectation.
    task read_row_and_element;
        begin
            if ($fscanf(vectors, "%d %d", row_value, data_value) != 2)
                reject_vector("missing bank check field");
            if (!fits_unsigned(row_value, RW) || row_value[31:0] >= ROWS)
                reject_vector("row outside the buffer");
            if (!fits_unsigned(data_value, EBITS))
                reject_vector("element wider than EBITS");
        end
    endtask

    initial begin
        clk = 1'b0;
        row = {RW{1'b0}};
        bank_row = {(SIMD*RW){1'b0}};
        write = {SIMD{1'b0}};
        write_data = {(SIMD*EBITS){1'b0}};
        open_vectors;
        while ($fscanf(vectors, "%d", kind) == 1) begin
            line = line + 1;
            if (kind == WRITE) begin
                for (b = 0; b < SIMD; b = b + 1) begin
                    if ($fscanf(vectors, "%d", write_flag) != 1 || !fits_unsigned(write_flag, 1))
                        reject_vector("write flag not 0 or 1");
                    read_row_and_element;
                    next_write[b] = write_flag[0];
                    next_bank_row[b*RW +: RW] = row_value[RW-1:0];
                    next_write_data[b*EBITS +: EBITS] = data_value[EBITS-1:0];
                end
                write = next_write;
                bank_row = next_bank_row;
                write_data = next_write_data;
                #1 clk = 1'b1;
                #1 clk = 1'b0;
                write = {SIMD{1'b0}};
            end else if (kind == CHECK_ROW) begin
                if ($fscanf(vectors, "%d", row_value) != 1)
                    reject_vector("missing row");
                if (!fits_unsigned(row_value, RW) || row_value[31:0] >= ROWS)
                    reject_vector("row outside the buffer");
                row = row_value[RW-1:0];
                for (b = 0; b < SIMD; b = b + 1) begin
                    if ($fscanf(vectors, "%d", data_value) != 1)
                        reject_vector("missing element");
                    if (!fits_unsigned(data_value, EBITS))
                        reject_vector("element wider than EBITS");
                    expected[b*EBITS +: EBITS] = data_value[EBITS-1:0];
                end
                #1;
                observed = row_data;
            end else if (kind == CHECK_BANKS) begin
                for (b = 0; b < SIMD; b = b + 1) begin
                    read_row_and_element;
                    next_bank_row[b*RW +: RW] = row_value[RW-1:0];
                    expected[b*EBITS +: EBITS] = data_value[EBITS-1:0];
                end
                bank_row = next_bank_row;
                #1;
                observed = bank_data;
            end else begin
                reject_vector("unknown step kind");
                #1;
            end
            if (kind != WRITE) begin
                checked = checked + 1;
                wrong_banks = 0;
                for (b = 0; b < SIMD; b = b + 1)
                    if (observed[b*EBITS +: EBITS] !== expected[b*EBITS +: EBITS]) begin
                        wrong_banks = wrong_banks + 1;
                        if (errors + wrong_banks <= MAX_SHOWN)
                            $display("mismatch on line %0d: %0s port of bank %0d: %0d, expected %0d",
                                     line, kind == CHECK_ROW ? "row" : "read", b,
                                     observed[b*EBITS +: EBITS], expected[b*EBITS +: EBITS]);
                    end
                if (wrong_banks != 0)
                    errors = errors + 1;
            end
        end
        report;
    end
endmodule
