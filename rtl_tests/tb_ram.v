// Checks qnnc_ram, a memory of DEPTH words of WIDTH bits with one write port and one
// registered read port: the read data is the word at the read address as it was before the
// clock edge, one cycle after the address. No line reads the address it writes. One vector
// line a cycle (see vectors.vh):
//   check write write_addr write_data read_addr expected_read_data
// with each word as CHUNKS = ceil(WIDTH / 32) unsigned 32-bit fields, the least significant
// first; the read data expected is that of the read address one line earlier.
module tb_ram #(
    parameter WIDTH = 8,
    parameter DEPTH = 16,
    parameter AW    = 4
);
    `include "vectors.vh"

    localparam CHUNKS = (WIDTH + 31) / 32;

    reg              clk;
    reg              write;
    reg [AW-1:0]     write_addr;
    reg [WIDTH-1:0]  write_data;
    reg [AW-1:0]     read_addr;
    wire [WIDTH-1:0] read_data;

    qnnc_ram #(.WIDTH(WIDTH), .DEPTH(DEPTH), .AW(AW)) ram (
        .clk(clk), .write(write), .write_addr(write_addr), .write_data(write_data),
        .read_addr(read_addr), .read_data(read_data));

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

    // Reads an address of the memory.
    task read_address(output reg [AW-1:0] address);
        reg signed [63:0] field;
        begin
            read_unsigned(field, AW);
            if (!fits_below(field, DEPTH))
                reject_vector("address outside the memory");
            address = field[AW-1:0];
        end
    endtask

    reg check;
    reg signed [63:0] check_field;
    reg [WIDTH-1:0] expected;
    initial begin
        clk = 1'b0;
        open_vectors;
        while ($fscanf(vectors, "%d", check_field) == 1) begin
            line = line + 1;
            if (!fits_unsigned(check_field, 1))
                reject_vector("check flag not 0 or 1");
            check = check_field[0];
            read_flag(write);
            read_address(write_addr);
            read_word(write_data);
            read_address(read_addr);
            read_word(expected);
            if (write && read_addr == write_addr)
                reject_vector("read of the address written");
            #1;
            if (check) begin
                checked = checked + 1;
                if (read_data !== expected) begin
                    errors = errors + 1;
                    if (errors <= MAX_SHOWN)
                        $display("mismatch on line %0d: read data %h, expected %h", line,
                                 read_data, expected);
                end
            end
            clk = 1'b1;
            #1 clk = 1'b0;
        end
        report;
    end
endmodule
