// Shared by the block testbenches, included inside each testbench module: opening the vector
// file named by +vectors=<file>, range checks on the values read from it, and the closing
// report of exactly two lines, `errors N` and `checked M`. A malformed vector prints a line
// starting with `error:` and ends the simulation without the report.
//
// A testbench assembles a wide input in a staging register and then assigns it whole: Verilator
// 5.006 does not re-evaluate the block when a timed process writes only a variable part-select
// of its input.
localparam MAX_SHOWN = 10;  // mismatches printed in full; the rest are only counted

reg [8*1024-1:0] vectors_path;
integer vectors, line, errors, checked;

task open_vectors;
    begin
        errors = 0;
        checked = 0;
        line = 0;
        if (!$value$plusargs("vectors=%s", vectors_path)) begin
            $display("error: no +vectors=<file> argument");
            $finish;
        end
        vectors = $fopen(vectors_path, "r");
        if (vectors == 0) begin
            $display("error: cannot open %0s", vectors_path);
            $finish;
        end
    end
endtask

task reject_vector(input [8*40-1:0] problem);
    begin
        $display("error: %0s on line %0d of %0s", problem, line, vectors_path);
        $finish;
    end
endtask

task report;
    begin
        $fclose(vectors);
        $display("errors %0d", errors);
        $display("checked %0d", checked);
        $finish;
    end
endtask

function fits_signed(input signed [63:0] value, input integer bits);
    fits_signed = value >= -(64'sd1 <<< (bits - 1)) && value < (64'sd1 <<< (bits - 1));
endfunction

function fits_unsigned(input signed [63:0] value, input integer bits);
    fits_unsigned = value >= 0 && value < (64'sd1 <<< bits);
endfunction
