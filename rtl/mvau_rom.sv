// mvau_rom: read-only parameter memory of the MVAU kernels (weights, thresholds).
//
// DEPTH words of WIDTH bits, initialised with $readmemh from INIT_FILE (one
// hex word per line, word 0 first; an empty INIT_FILE leaves the memory at
// zero). Synchronous read with enable: rdata is the word at addr one clock
// after a cycle with en=1, and holds while en=0 (maps onto a BRAM's read port
// with its clock enable, or onto LUT-RAM plus a register).
//
// REG_ADDR = 1 (RAM_STYLE "distributed" only) puts the register on the
// address rather than on the data (same timing seen from outside): the word
// is then a combinational function of a registered address, so synthesis
// merges the ROM LUTs into the logic that consumes rdata (an XNOR, a
// threshold folded into an adder) instead of spending a LUT and a flip-flop
// per bit on the ROM alone. Where a word bit feeds much logic (the
// partial products of a LUT multiplier) the ROM logic would be duplicated
// into every use, so REG_ADDR = 0 (data register) stays the default.
//
// RAM_STYLE selects the memory resource: "block" (BRAM), "distributed"
// (LUTs) or anything else (no attribute: the tool decides). Attributes are
// literal in each generate branch because not every tool evaluates a
// parameter inside an attribute. A ROM carries two: rom_style (what Vivado
// reads for memories without a write port) and ram_style (what Yosys reads;
// Yosys cannot map a ROM onto LUT-RAM, so "distributed" is ram_style="logic",
// a LUT ROM, which is also what Vivado builds for a distributed ROM).
module mvau_rom #(
    parameter int unsigned DEPTH = 1,
    parameter int unsigned WIDTH = 1,
    parameter string       INIT_FILE = "",
    parameter string       RAM_STYLE = "auto",
    parameter bit          REG_ADDR = 0,
    localparam int unsigned AW = DEPTH > 1 ? $clog2(DEPTH) : 1
) (
    input  logic             clk,
    input  logic             en,
    input  logic [AW-1:0]    addr,
    output logic [WIDTH-1:0] rdata
);
    // The memory is written only by $readmemh; with no INIT_FILE it stays
    // undriven (reads as zero after synthesis), which is intended.
    /* verilator lint_off UNDRIVEN */
    if (RAM_STYLE == "block") begin : g_block
        (* rom_style = "block", ram_style = "block" *) logic [WIDTH-1:0] mem [DEPTH];
        if (INIT_FILE != "") begin : g_init
            initial $readmemh(INIT_FILE, mem);
        end
        always_ff @(posedge clk) if (en) rdata <= mem[addr];
    end else if (RAM_STYLE == "distributed" && REG_ADDR) begin : g_dist_a
        (* rom_style = "distributed", ram_style = "logic" *) logic [WIDTH-1:0] mem [DEPTH];
        if (INIT_FILE != "") begin : g_init
            initial $readmemh(INIT_FILE, mem);
        end
        // The initial value keeps Yosys's memory_dff from merging addr_q
        // into the read port (it skips address FFs with a defined init), so
        // memory_map does not turn it back into a data register.
        /* verilator lint_off PROCASSINIT */
        logic [AW-1:0] addr_q = '0;
        /* verilator lint_on PROCASSINIT */
        always_ff @(posedge clk) if (en) addr_q <= addr;
        assign rdata = mem[addr_q];
    end else if (RAM_STYLE == "distributed") begin : g_dist
        (* rom_style = "distributed", ram_style = "logic" *) logic [WIDTH-1:0] mem [DEPTH];
        if (INIT_FILE != "") begin : g_init
            initial $readmemh(INIT_FILE, mem);
        end
        always_ff @(posedge clk) if (en) rdata <= mem[addr];
    end else begin : g_auto
        logic [WIDTH-1:0] mem [DEPTH];
        if (INIT_FILE != "") begin : g_init
            initial $readmemh(INIT_FILE, mem);
        end
        always_ff @(posedge clk) if (en) rdata <= mem[addr];
    end
    /* verilator lint_on UNDRIVEN */
endmodule : mvau_rom
