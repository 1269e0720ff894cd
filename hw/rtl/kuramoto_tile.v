`timescale 1ns / 1ps
`default_nettype none

// kuramoto_tile: a digital Kuramoto tile of N_CELLS phase-accumulator cells.
//
// Each Euler step computes, for every cell i (all cells in parallel, one source j per
// clock cycle),
//
//     S_i = sum_j k_ij * sin_j,   C_i = sum_j k_ij * cos_j        (sin_j, cos_j: table values of theta_j)
//     comb_i = cos_i * S_i - sin_i * C_i                         (= sum_j k_ij A^2 sin(theta_j - theta_i))
//     theta_i <= theta_i + (omega_i << (PHASE_BITS - OMEGA_BITS)) + ((comb_i + 2^(F_i - 1)) >>> F_i)
//
// with all arithmetic on integers, phases mod 2^PHASE_BITS (2*pi <-> 2^PHASE_BITS). The
// sine comes from a 2^LUT_BITS-entry table (nearest entry: index = top LUT_BITS bits of
// theta + half an entry; cosine = the entry a quarter period on). The table is a RAM
// written over the bus with the program, so the RTL carries no generated constants.
// The golden model, bit for bit, is oscsim/fixedpoint.py; the conditioning oscillators of
// Un-0 are ordinary cells whose coupling rows hear only each other.
//
// Timing: one Euler step = N_CELLS source cycles + drain + combine + update = N_CELLS + 3
// clock cycles; one shared table read (sin and cos) per cycle; per cell two W x S
// multiply-accumulates per cycle and two S x ACC multiplies per step.
//
// Bus (one 32-bit word per address, writes ignored while busy, reads one cycle later):
//   0                : N*N words  coupling code k_ij at i*N + j (two's complement)
//   OMEGA_BASE = N*N : N words    omega_i (units of 2^(PHASE_BITS-OMEGA_BITS) phase LSBs per step)
//   SHIFT_BASE       : N words    F_i
//   LUT_BASE         : L words    sine table
//   PHASE_BASE       : N words    phases (write: initial phases; read: current phases)
// Control: `start` (sampled while idle) begins `n_steps` Euler steps from the current
// phases (0 steps: `done` at once); `step_done` pulses after each step's update (the
// `phases` port then holds the new phases), `done` with the last one. `rst` (synchronous)
// stops a run and clears phases and control; the program memories keep their contents.
module kuramoto_tile #(
    parameter integer N_CELLS     = 8,
    parameter integer PHASE_BITS  = 16,
    parameter integer WEIGHT_BITS = 8,
    parameter integer SINE_BITS   = 12,
    parameter integer LUT_BITS    = 10,
    parameter integer OMEGA_BITS  = 16,
    parameter integer ACC_BITS    = 25,
    parameter integer SHIFT_BITS  = 6,
    parameter integer STEP_BITS   = 16
) (
    input  wire                          clk,
    input  wire                          rst,
    // program / phase bus
    input  wire                          bus_we,
    input  wire [31:0]                   bus_addr,
    /* verilator lint_off UNUSEDSIGNAL */  // each memory keeps the low bits of its width
    input  wire [31:0]                   bus_wdata,
    /* verilator lint_on UNUSEDSIGNAL */
    output reg  [31:0]                   bus_rdata,
    // run control
    input  wire                          start,
    input  wire [STEP_BITS-1:0]          n_steps,
    output wire                          busy,
    output reg                           step_done,
    output reg                           done,
    output wire [N_CELLS*PHASE_BITS-1:0] phases
);
    localparam integer M = N_CELLS;
    localparam integer L = 1 << LUT_BITS;
    localparam integer CW = (M > 1) ? $clog2(M) : 1;
    localparam integer PROD_BITS = ACC_BITS + SINE_BITS;
    localparam integer RW = (PROD_BITS + 1 > PHASE_BITS) ? PROD_BITS + 1 : PHASE_BITS;
    localparam integer DROP = PHASE_BITS - LUT_BITS;
    localparam [31:0] OMEGA_BASE = M * M;
    localparam [31:0] SHIFT_BASE = OMEGA_BASE + M;
    localparam [31:0] LUT_BASE = SHIFT_BASE + M;
    localparam [31:0] PHASE_BASE = LUT_BASE + L;
    localparam [31:0] LAST_INDEX = M - 1;
    localparam [CW-1:0] LAST = LAST_INDEX[CW-1:0];
    localparam [LUT_BITS-1:0] QUARTER = 1 << (LUT_BITS - 2);

    localparam [2:0] S_IDLE = 3'd0, S_ISSUE = 3'd1, S_DRAIN = 3'd2, S_COMBINE = 3'd3, S_UPDATE = 3'd4;

    reg [2:0] state;
    reg [CW-1:0] src;
    reg [STEP_BITS-1:0] steps_left;

    assign busy = (state != S_IDLE);
    wire bus_write = bus_we && !busy;
    wire clear_acc = (state == S_IDLE) || (state == S_UPDATE);

    // ---------------------------------------------------------------- shared memories
    reg signed [OMEGA_BITS-1:0] omega_mem [0:M-1];
    reg        [SHIFT_BITS-1:0] shift_mem [0:M-1];
    reg signed [SINE_BITS-1:0]  lut       [0:L-1];
    reg        [PHASE_BITS-1:0] phase     [0:M-1];

    wire [31:0] off_omega = bus_addr - OMEGA_BASE;
    wire [31:0] off_shift = bus_addr - SHIFT_BASE;
    wire [31:0] off_lut = bus_addr - LUT_BASE;
    wire [31:0] off_phase = bus_addr - PHASE_BASE;
    wire hit_k = bus_addr < OMEGA_BASE;
    wire hit_omega = off_omega < M;
    wire hit_shift = off_shift < M;
    wire hit_lut = off_lut < L;
    wire hit_phase = off_phase < M;

    always @(posedge clk) begin
        if (bus_write && hit_omega) omega_mem[off_omega[CW-1:0]] <= bus_wdata[OMEGA_BITS-1:0];
        if (bus_write && hit_shift) shift_mem[off_shift[CW-1:0]] <= bus_wdata[SHIFT_BITS-1:0];
        if (bus_write && hit_lut) lut[off_lut[LUT_BITS-1:0]] <= bus_wdata[SINE_BITS-1:0];
    end

    // ---------------------------------------------------------------- source stage
    // one source per cycle: its table index, then sin and cos broadcast to every cell
    wire [PHASE_BITS-1:0] src_phase = phase[src];
    wire [LUT_BITS-1:0] sin_idx;
    generate
        if (DROP > 0) begin : g_round
            localparam [PHASE_BITS-1:0] HALF = {{(PHASE_BITS - 1) {1'b0}}, 1'b1} << (DROP - 1);
            /* verilator lint_off UNUSEDSIGNAL */  // the index is the top LUT_BITS bits
            wire [PHASE_BITS-1:0] rounded = src_phase + HALF;
            /* verilator lint_on UNUSEDSIGNAL */
            assign sin_idx = rounded[PHASE_BITS-1:DROP];
        end else begin : g_exact
            assign sin_idx = src_phase;
        end
    endgenerate
    wire [LUT_BITS-1:0] cos_idx = sin_idx + QUARTER;

    reg a_valid;
    reg [CW-1:0] a_j;
    reg signed [SINE_BITS-1:0] a_sin;
    reg signed [SINE_BITS-1:0] a_cos;
    always @(posedge clk) begin
        if (rst) a_valid <= 1'b0;
        else a_valid <= (state == S_ISSUE);
        a_j <= src;
        a_sin <= lut[sin_idx];
        a_cos <= lut[cos_idx];
    end
    wire signed [ACC_BITS-1:0] a_sin_ext = {{(ACC_BITS - SINE_BITS) {a_sin[SINE_BITS-1]}}, a_sin};
    wire signed [ACC_BITS-1:0] a_cos_ext = {{(ACC_BITS - SINE_BITS) {a_cos[SINE_BITS-1]}}, a_cos};

    // ---------------------------------------------------------------- cells
    // coupling word address -> (row, column); M is a constant, so this is a constant divider
    wire [31:0] k_row = bus_addr / M;
    /* verilator lint_off UNUSEDSIGNAL */  // a column is < M: its low CW bits
    wire [31:0] k_col = bus_addr - k_row * M;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [M*WEIGHT_BITS-1:0] k_read_flat;  // bus read-back: column k_col of every cell's bank
    wire [M*PHASE_BITS-1:0] inc_flat;  // each cell's phase increment of this step

    genvar gi;
    generate
        for (gi = 0; gi < M; gi = gi + 1) begin : g_cell
            localparam [31:0] ROW = gi;
            localparam [CW-1:0] SELF = gi;

            // coupling bank: row gi of k (one RAM per cell)
            reg signed [WEIGHT_BITS-1:0] kbank [0:M-1];
            always @(posedge clk) begin
                if (bus_write && hit_k && k_row == ROW) kbank[k_col[CW-1:0]] <= bus_wdata[WEIGHT_BITS-1:0];
            end
            assign k_read_flat[gi*WEIGHT_BITS +: WEIGHT_BITS] = kbank[k_col[CW-1:0]];

            // multiply-accumulate over the sources
            wire signed [WEIGHT_BITS-1:0] k = kbank[a_j];
            wire signed [ACC_BITS-1:0] k_ext = {{(ACC_BITS - WEIGHT_BITS) {k[WEIGHT_BITS-1]}}, k};
            reg signed [ACC_BITS-1:0] acc_s;
            reg signed [ACC_BITS-1:0] acc_c;
            reg signed [SINE_BITS-1:0] own_sin;
            reg signed [SINE_BITS-1:0] own_cos;
            reg signed [PROD_BITS-1:0] comb;
            always @(posedge clk) begin
                if (rst || clear_acc) begin
                    acc_s <= {ACC_BITS{1'b0}};
                    acc_c <= {ACC_BITS{1'b0}};
                end else if (a_valid) begin
                    acc_s <= acc_s + k_ext * a_sin_ext;
                    acc_c <= acc_c + k_ext * a_cos_ext;
                end
                if (a_valid && a_j == SELF) begin
                    own_sin <= a_sin;
                    own_cos <= a_cos;
                end
                if (state == S_COMBINE) begin
                    comb <= {{(PROD_BITS - SINE_BITS) {own_cos[SINE_BITS-1]}}, own_cos}
                                * {{SINE_BITS{acc_s[ACC_BITS-1]}}, acc_s}
                          - {{(PROD_BITS - SINE_BITS) {own_sin[SINE_BITS-1]}}, own_sin}
                                * {{SINE_BITS{acc_c[ACC_BITS-1]}}, acc_c};
                end
            end

            // increment: omega plus the coupling sum rounded to the nearest phase LSB
            wire [SHIFT_BITS-1:0] f = shift_mem[gi];
            wire signed [RW-1:0] comb_ext = {{(RW - PROD_BITS) {comb[PROD_BITS-1]}}, comb};
            wire signed [RW-1:0] half = (f == {SHIFT_BITS{1'b0}}) ? {RW{1'b0}}
                                                                  : ({{(RW - 1) {1'b0}}, 1'b1} << (f - 1'b1));
            wire signed [RW-1:0] rounded = comb_ext + half;
            /* verilator lint_off UNUSEDSIGNAL */  // the increment is taken mod 2^PHASE_BITS
            wire signed [RW-1:0] coupled = rounded >>> f;
            /* verilator lint_on UNUSEDSIGNAL */
            wire signed [OMEGA_BITS-1:0] w = omega_mem[gi];
            wire [PHASE_BITS-1:0] w_inc;
            if (PHASE_BITS > OMEGA_BITS) begin : g_omega_shift
                assign w_inc = {w, {(PHASE_BITS - OMEGA_BITS) {1'b0}}};
            end else begin : g_omega_full
                assign w_inc = w;
            end
            assign inc_flat[gi*PHASE_BITS +: PHASE_BITS] = w_inc + coupled[PHASE_BITS-1:0];
            assign phases[gi*PHASE_BITS +: PHASE_BITS] = phase[gi];
        end
    endgenerate

    // ---------------------------------------------------------------- phases and control
    integer i;
    always @(posedge clk) begin
        if (rst) begin
            for (i = 0; i < M; i = i + 1) phase[i] <= {PHASE_BITS{1'b0}};
        end else if (state == S_UPDATE) begin
            for (i = 0; i < M; i = i + 1) phase[i] <= phase[i] + inc_flat[i*PHASE_BITS +: PHASE_BITS];
        end else if (bus_write && hit_phase) begin
            phase[off_phase[CW-1:0]] <= bus_wdata[PHASE_BITS-1:0];
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            state <= S_IDLE;
            src <= {CW{1'b0}};
            steps_left <= {STEP_BITS{1'b0}};
            step_done <= 1'b0;
            done <= 1'b0;
        end else begin
            step_done <= 1'b0;
            done <= 1'b0;
            case (state)
                S_IDLE: begin
                    if (start) begin
                        if (n_steps == {STEP_BITS{1'b0}}) begin
                            done <= 1'b1;
                        end else begin
                            steps_left <= n_steps;
                            src <= {CW{1'b0}};
                            state <= S_ISSUE;
                        end
                    end
                end
                S_ISSUE: begin
                    if (src == LAST) begin
                        src <= {CW{1'b0}};
                        state <= S_DRAIN;
                    end else begin
                        src <= src + 1'b1;
                    end
                end
                S_DRAIN: state <= S_COMBINE;
                S_COMBINE: state <= S_UPDATE;
                S_UPDATE: begin
                    step_done <= 1'b1;
                    steps_left <= steps_left - 1'b1;
                    if (steps_left == {{(STEP_BITS - 1) {1'b0}}, 1'b1}) begin
                        done <= 1'b1;
                        state <= S_IDLE;
                    end else begin
                        state <= S_ISSUE;
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    // ---------------------------------------------------------------- bus read-back
    wire [CW-1:0] k_row_index = k_row[CW-1:0];
    wire signed [WEIGHT_BITS-1:0] k_rd = k_read_flat[k_row_index*WEIGHT_BITS +: WEIGHT_BITS];
    wire [PHASE_BITS-1:0] phase_rd = phase[off_phase[CW-1:0]];
    wire signed [OMEGA_BITS-1:0] omega_rd = omega_mem[off_omega[CW-1:0]];
    wire signed [SINE_BITS-1:0] lut_rd = lut[off_lut[LUT_BITS-1:0]];
    always @(posedge clk) begin
        if (hit_k) bus_rdata <= {{(32 - WEIGHT_BITS) {k_rd[WEIGHT_BITS-1]}}, k_rd};
        else if (hit_omega) bus_rdata <= {{(32 - OMEGA_BITS) {omega_rd[OMEGA_BITS-1]}}, omega_rd};
        else if (hit_shift) bus_rdata <= {{(32 - SHIFT_BITS) {1'b0}}, shift_mem[off_shift[CW-1:0]]};
        else if (hit_lut) bus_rdata <= {{(32 - SINE_BITS) {lut_rd[SINE_BITS-1]}}, lut_rd};
        else if (hit_phase) bus_rdata <= {{(32 - PHASE_BITS) {1'b0}}, phase_rd};
        else bus_rdata <= 32'd0;
    end
endmodule

`default_nettype wire
