// A simple dual-port memory: one write port and one registered read port, the shape FPGA
// block RAMs infer (iCE40 SB_RAM40_4K, ECP5 DP16KD, Xilinx RAMB18/36). The design never reads
// an address in the cycle it writes it.
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
    reg [WIDTH-1:0] mem [0:DEPTH-1];
    always @(posedge clk) begin
        if (write)
            mem[write_addr] <= write_data;
        read_data <= mem[read_addr];
    end
endmodule
