// Checks qnnc_rom, a read-only memory of DEPTH words of WIDTH bits loaded from the hex file
// rom.hex (which the test writes in the working directory) with a registered read: the data
// is the word at the address one cycle after the address. One vector line a cycle (see
// vectors.vh):
//   check addr expected_data
// with the word as CHUNKS = ceil(WIDTH / 32) unsigned 32-bit fields, the least significant
// first; the data expected is that of the address one line earlier.
module tb_rom #(
    parameter WIDTH = 40,
    parameter DEPTH = 13,
    parameter AW    = 4
);
    `include "vectors.vh"

    localparam CHUNKS = (WIDTH + 31) / 32;

    reg              clk;
    reg [AW-1:0]     addr;
    wire [WIDTH-1:0] data;

    qnnc_rom #(.WIDTH(WIDTH), .DEPTH(DEPTH), .AW(AW), .FILE("rom.hex")) rom (
        .clk(clk), .addr(addr), .data(data));

    // Reads a word as CHUNKS fields.
    task read_word(output reg [WIDTH-1:0] word);
        integer c, b;
        reg signed [63:0] chunk;
        begin
            for (c = 0; c < CHUNKS; c = c + 1) begin
                read_unsigned(chunk, c == CHUNKS - 1 ? WIDTH - 32 * c : 32);
                for (b = 0; b < 32; b = b + 1)
                    if (c * 32 + b < WIDTH)
                        word[c * 32 + b] = chunk[b];
            end
        end
    endtask

    reg check;
    reg signed [63:0] check_field, addr_value;
    reg [WIDTH-1:0] expected;
    initial begin
        clk = 1'b0;
        open_vectors;
        while ($fscanf(vectors, "%d", check_field) == 1) begin
            line = line + 1;
            if (!fits_unsigned(check_field, 1))
                reject_vector("check flag not 0 or 1");
            check = check_field[0];
            read_unsigned(addr_value, AW);
            if (!fits_below(addr_value, DEPTH))
                reject_vector("address outside the memory");
            read_word(expected);
            addr = addr_value[AW-1:0];
            #1;
            if (check) begin
                checked = checked + 1;
                if (data !== expected) begin
                    errors = errors + 1;
                    if (errors <= MAX_SHOWN)
                        $display("mismatch on line %0d: data %h, expected %h", line, data,
                                 expected);
                end
            end
            clk = 1'b1;
            #1 clk = 1'b0;
        end
        report;
    end
endmodule
