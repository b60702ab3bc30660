// A read-only memory initialised from a hex file that the compiler writes. The read is
// registered (data one cycle after the address), the shape FPGA block RAMs infer. Memories
// over 2 kbit are marked for block RAM (Xilinx tools would otherwise pick LUT RAM), counting
// only the KEPT bits of a word that the reader uses (synthesis drops the others).
module qnnc_rom #(
    parameter WIDTH = 32,
    parameter DEPTH = 16,
    parameter AW    = 4,
    parameter FILE  = "rom.hex",
    parameter KEPT  = WIDTH
) (
    input  wire             clk,
    input  wire [AW-1:0]    addr,
    output reg  [WIDTH-1:0] data
);
    generate
        if (KEPT * DEPTH > 2048) begin : g_block
            (* ram_style = "block" *)
            reg [WIDTH-1:0] mem [0:DEPTH-1];
            initial $readmemh(FILE, mem);
            always @(posedge clk)
                data <= mem[addr];
        end else begin : g_small
            reg [WIDTH-1:0] mem [0:DEPTH-1];
            initial $readmemh(FILE, mem);
            always @(posedge clk)
                data <= mem[addr];
        end
    endgenerate
endmodule
