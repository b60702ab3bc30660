// An activation buffer of SIMD banks: element e lives in bank e % SIMD, row e / SIMD. One
// aligned row of all banks is read at once (the window loader); each bank also has its own
// read (for max-pooling's read-modify-write) and write port.
module qnnc_act_buffer #(
    parameter SIMD  = 16,
    parameter EBITS = 8,
    parameter ROWS  = 64,
    parameter RW    = 6
) (
    input  wire                  clk,
    input  wire [RW-1:0]         row,
    output wire [SIMD*EBITS-1:0] row_data,
    input  wire [SIMD*RW-1:0]    bank_row,
    output wire [SIMD*EBITS-1:0] bank_data,
    input  wire [SIMD-1:0]       write,
    input  wire [SIMD*EBITS-1:0] write_data
);
    genvar b;
    generate
        for (b = 0; b < SIMD; b = b + 1) begin : g_bank
            reg [EBITS-1:0] mem [0:ROWS-1];
            assign row_data[b*EBITS +: EBITS] = mem[row];
            assign bank_data[b*EBITS +: EBITS] = mem[bank_row[b*RW +: RW]];
            always @(posedge clk)
                if (write[b])
                    mem[bank_row[b*RW +: RW]] <= write_data[b*EBITS +: EBITS];
        end
    endgenerate
endmodule
