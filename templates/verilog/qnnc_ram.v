// A simple dual-port memory: one write port and one registered read port, the shape FPGA
// block RAMs infer (iCE40 SB_RAM40_4K, ECP5 DP16KD, Xilinx RAMB18/36). The design never reads
// an address in the cycle it writes it. Memories over 2 kbit are marked for block RAM (Xilinx
// tools would otherwise pick LUT RAM).
module qnnc_ram #(
    parameter WIDTH = 8,
    parameter DEPTH = 16,
    parameter AW    = 4
) (
    input  wire             clk,
    input  wire             write,
    input  wire [AW-1:0]    write_addr,
    input  wire [WIDTH-1:0] write_data,
    input  wire [AW-1:0]    read_addr,
    output reg  [WIDTH-1:0] read_data
);
    generate
        if (WIDTH * DEPTH > 2048) begin : g_block
            (* ram_style = "block" *)
            reg [WIDTH-1:0] mem [0:DEPTH-1];
            always @(posedge clk) begin
                if (write)
                    mem[write_addr] <= write_data;
                read_data <= mem[read_addr];
            end
        end else begin : g_small
            reg [WIDTH-1:0] mem [0:DEPTH-1];
            always @(posedge clk) begin
                if (write)
                    mem[write_addr] <= write_data;
                read_data <= mem[read_addr];
            end
        end
    endgenerate
endmodule
