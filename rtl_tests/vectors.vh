// Shared by the block testbenches, included inside each testbench module: opening the vector
// file named by +vectors=<file>, range checks on the values read from it, and the closing
// report of exactly two lines, `errors N` and `checked M`. A malformed vector prints a line
// starting with `error:` and ends the simulation without the report.
//
// A testbench assembles a wide input in a staging register and then assigns it whole: Verilator
// 5.006 does not re-evaluate the block when a timed process writes only a variable part-select
// of its input.
//
// The testbench of a clocked block reads one vector line a clock cycle, led by a check flag:
// it drives the line's inputs while the clock is low, lets them settle, compares the block's
// outputs with the line's expected values when the flag is 1, and then gives the rising edge.
// The outputs compared are those before the edge, so a registered output shows what earlier
// cycles computed: with a latency of L cycles, the result of line n's inputs is expected on
// line n + L. The flag is 0 where an output is not defined yet (the expected values are then
// only placeholders).
//
// The testbenches are built with -fno-life: Verilator 5.006's liveness pass drops the updates
// of the counters below made in a loop with timing controls, and the report would read 0.
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

// Whether value is in [0, limit): an index into limit entries.
function fits_below(input signed [63:0] value, input integer limit);
    fits_below = value >= 0 && value < $signed({{32{limit[31]}}, limit});
endfunction

// Reads the next field of the line: a signed decimal of at most `bits` bits.
task read_signed(output reg signed [63:0] value, input integer bits);
    begin
        if ($fscanf(vectors, "%d", value) != 1)
            reject_vector("missing field");
        if (!fits_signed(value, bits))
            reject_vector("field wider than its port");
    end
endtask

// Reads the next field of the line: an unsigned decimal of at most `bits` bits.
task read_unsigned(output reg signed [63:0] value, input integer bits);
    begin
        if ($fscanf(vectors, "%d", value) != 1)
            reject_vector("missing field");
        if (!fits_unsigned(value, bits))
            reject_vector("field wider than its port");
    end
endtask

// Reads the next field of the line: a flag, 0 or 1.
task read_flag(output reg value);
    /* verilator lint_off UNUSEDSIGNAL */
    reg signed [63:0] field;  // read_unsigned checks it whole
    /* verilator lint_on UNUSEDSIGNAL */
    begin
        read_unsigned(field, 1);
        value = field[0];
    end
endtask
