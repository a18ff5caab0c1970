/*
 * Nulling kernels of the Clements and Reck mesh decompositions (see decompose.py).
 *
 * Convention (optinc_compiler/mzi.py): T(theta, phi) = B P(theta) B P(phi) =
 *   k * [[e s, c], [e c, -s]],  k = i exp(i theta/2), e = exp(i phi),
 *   s = sin(theta/2), c = cos(theta/2).
 *
 * Nulling from the right on columns (c, c+1) of a row [x, y] (A <- A T^H):
 *   theta = 2 atan2(|y|, |x|), phi = arg(-x conj(y)).
 * Nulling from the left on rows (r-1, r) of a column [x; y] (A <- T A):
 *   theta = 2 atan2(|x|, |y|), phi = arg(y conj(x)).
 * When x or y is zero phi is free and set to 0 (exact zeros stay exact).
 *
 * The O(N^3) loops are dependent scalar updates that numpy cannot vectorise; here they
 * run at a few ns per complex 2x2 update and start in microseconds (a JIT needs ~1 s).
 * Arrays come through the buffer protocol: complex128 is two interleaved doubles. This is
 * a private module: kernels.py passes C-contiguous arrays of the right dtypes, and
 * here only the byte sizes are checked.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    double re, im;
} cplx;

/* Clements' loops get an x86-64-v3 (AVX2, FMA) clone next to the baseline one, picked at
 * load time by CPU features (ifunc); results agree to rounding. Measured at N=256: 20 ms
 * against 24 ms. Reck's chains ran slower in that clone (28 ms against 24 ms), so
 * they keep the baseline code. */
#if defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif

/* Rows updated together in the right-multiplication chains (overlaps their latency). */
#define ROW_BLOCK 4

static inline cplx c_mul(cplx a, cplx b) {
    cplx r = {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
    return r;
}
static inline cplx c_lin2(cplx a, cplx p, cplx b, cplx q) { /* a p + b q */
    cplx r = {a.re * p.re - a.im * p.im + b.re * q.re - b.im * q.im,
              a.re * p.im + a.im * p.re + b.re * q.im + b.im * q.re};
    return r;
}
static inline cplx c_conj(cplx a) {
    cplx r = {a.re, -a.im};
    return r;
}
static inline double c_abs(cplx a) { return hypot(a.re, a.im); }
static inline int c_is_zero(cplx a) { return a.re == 0.0 && a.im == 0.0; }

/* T(theta, phi) entries t[0..3] = T00, T01, T10, T11. */
static void mzi_entries(double theta, double phi, cplx *t) {
    double s = sin(0.5 * theta), c = cos(0.5 * theta);
    cplx k = {-sin(0.5 * theta), cos(0.5 * theta)}; /* i exp(i theta/2) */
    cplx e = {cos(phi), sin(phi)};
    cplx ke = c_mul(k, e);
    t[0].re = ke.re * s; t[0].im = ke.im * s;
    t[1].re = k.re * c;  t[1].im = k.im * c;
    t[2].re = ke.re * c; t[2].im = ke.im * c;
    t[3].re = -k.re * s; t[3].im = -k.im * s;
}

/* MZI nulling x in row [x, y] from the right; t receives the entries of T^H
 * arranged so that new_x = x t0 + y t1 and new_y = x t2 + y t3. */
static void right_coeffs(cplx x, cplx y, double *theta, double *phi, cplx *t) {
    cplx m[4];
    *theta = 2.0 * atan2(c_abs(y), c_abs(x));
    if (c_is_zero(x) || c_is_zero(y)) {
        *phi = 0.0;
    } else {
        cplx p = c_mul(x, c_conj(y));
        *phi = atan2(-p.im, -p.re);
    }
    mzi_entries(*theta, *phi, m);
    /* (A T^H)[:, c] = A[:, c] conj(T00) + A[:, c+1] conj(T01); column c+1 likewise. */
    t[0] = c_conj(m[0]);
    t[1] = c_conj(m[1]);
    t[2] = c_conj(m[2]);
    t[3] = c_conj(m[3]);
}

/* MZI nulling y in column [x; y] from the left: new_x = t0 x + t1 y, new_y = t2 x + t3 y. */
static void left_coeffs(cplx x, cplx y, double *theta, double *phi, cplx *t) {
    *theta = 2.0 * atan2(c_abs(x), c_abs(y));
    if (c_is_zero(x) || c_is_zero(y)) {
        *phi = 0.0;
    } else {
        cplx p = c_mul(y, c_conj(x));
        *phi = atan2(p.im, p.re);
    }
    mzi_entries(*theta, *phi, t);
}

/* Right MZIs q = 0..nops-1 on columns (c0-q, c0-q+1), rows r0..r1-1; the shared column is
 * carried in registers, rows go in blocks so several dependent chains overlap. */
HOT static void chain_descending(cplx *a, Py_ssize_t n, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0,
                             Py_ssize_t nops, const cplx *t) {
    cplx carry[ROW_BLOCK];
    for (Py_ssize_t rb = r0; rb < r1; rb += ROW_BLOCK) {
        Py_ssize_t nb = r1 - rb < ROW_BLOCK ? r1 - rb : ROW_BLOCK;
        for (Py_ssize_t b = 0; b < nb; b++) carry[b] = a[(rb + b) * n + c0 + 1];
        for (Py_ssize_t q = 0; q < nops; q++) {
            Py_ssize_t c = c0 - q;
            const cplx *tq = t + 4 * q;
            for (Py_ssize_t b = 0; b < nb; b++) {
                cplx *row = a + (rb + b) * n;
                cplx x = row[c], y = carry[b];
                row[c + 1] = c_lin2(x, tq[2], y, tq[3]);
                carry[b] = c_lin2(x, tq[0], y, tq[1]);
            }
        }
        for (Py_ssize_t b = 0; b < nb; b++) a[(rb + b) * n + c0 - nops + 1] = carry[b];
    }
}

/* Right MZIs q = 0..nops-1 on columns (c0+q, c0+q+1), rows r0..r1-1. */
static void chain_ascending(cplx *a, Py_ssize_t n, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0,
                            Py_ssize_t nops, const cplx *t) {
    cplx carry[ROW_BLOCK];
    for (Py_ssize_t rb = r0; rb < r1; rb += ROW_BLOCK) {
        Py_ssize_t nb = r1 - rb < ROW_BLOCK ? r1 - rb : ROW_BLOCK;
        for (Py_ssize_t b = 0; b < nb; b++) carry[b] = a[(rb + b) * n + c0];
        for (Py_ssize_t q = 0; q < nops; q++) {
            Py_ssize_t c = c0 + q;
            const cplx *tq = t + 4 * q;
            for (Py_ssize_t b = 0; b < nb; b++) {
                cplx *row = a + (rb + b) * n;
                cplx x = carry[b], y = row[c + 1];
                row[c] = c_lin2(x, tq[0], y, tq[1]);
                carry[b] = c_lin2(x, tq[2], y, tq[3]);
            }
        }
        for (Py_ssize_t b = 0; b < nb; b++) a[(rb + b) * n + c0 + nops] = carry[b];
    }
}

/* Two distinct rows of length len <- T applied on the left (restrict: vectorisable). */
static inline void rotate_rows(cplx *restrict up, cplx *restrict lo, Py_ssize_t len, const cplx *t) {
    const cplx t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3];
    for (Py_ssize_t col = 0; col < len; col++) {
        cplx u = up[col], v = lo[col];
        up[col] = c_lin2(u, t0, v, t1);
        lo[col] = c_lin2(u, t2, v, t3);
    }
}

/* Clements et al., Optica 3, 1460 (2016): null the lower-left anti-diagonals, even ones
 * from the right, odd ones from the left, then move the left MZIs through the diagonal
 * (their Eq. 5). Outputs in light order. Returns 0, or -1 when out of memory. */
HOT static int clements(cplx *a, Py_ssize_t n, int64_t *modes, double *theta, double *phi, cplx *d) {
    Py_ssize_t k = n * (n - 1) / 2, nr = 0, nl = 0;
    cplx *t = malloc(sizeof(cplx) * 4 * (size_t)(n > 0 ? n : 1));
    int64_t *l_mode = malloc(sizeof(int64_t) * (size_t)(k > 0 ? k : 1));
    double *l_theta = malloc(sizeof(double) * (size_t)(k > 0 ? k : 1));
    double *l_phi = malloc(sizeof(double) * (size_t)(k > 0 ? k : 1));
    if (!t || !l_mode || !l_theta || !l_phi) {
        free(t); free(l_mode); free(l_theta); free(l_phi);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n - 1; i++) {
        if (i % 2 == 0) {
            /* MZI j nulls a[n-1-j, i-j] on columns (i-j, i-j+1); rows below n-1-j are
             * already zero there. Row n-1-j first takes MZIs 0..j-1, then defines MZI j. */
            for (Py_ssize_t j = 0; j <= i; j++) {
                cplx *row = a + (n - 1 - j) * n;
                cplx carry = row[i + 1];
                for (Py_ssize_t q = 0; q < j; q++) {
                    Py_ssize_t c = i - q;
                    cplx x = row[c];
                    row[c + 1] = c_lin2(x, t[4 * q + 2], carry, t[4 * q + 3]);
                    carry = c_lin2(x, t[4 * q + 0], carry, t[4 * q + 1]);
                }
                Py_ssize_t c = i - j;
                cplx x = row[c];
                right_coeffs(x, carry, &theta[nr], &phi[nr], t + 4 * j);
                row[c + 1] = c_lin2(x, t[4 * j + 2], carry, t[4 * j + 3]);
                row[c].re = 0.0;
                row[c].im = 0.0;
                modes[nr++] = c;
            }
            chain_descending(a, n, 0, n - 1 - i, i, i + 1, t);
        } else {
            /* MZI j nulls a[n-1-i+j, j] on rows (n-2-i+j, n-1-i+j); columns left of j are
             * already zero in both rows. Row updates are contiguous. */
            for (Py_ssize_t j = 0; j <= i; j++) {
                Py_ssize_t r = n - 1 - i + j;
                cplx *up = a + (r - 1) * n, *lo = a + r * n, tt[4];
                left_coeffs(up[j], lo[j], &l_theta[nl], &l_phi[nl], tt);
                rotate_rows(up + j, lo + j, n - j, tt);
                lo[j].re = 0.0;
                lo[j].im = 0.0;
                l_mode[nl++] = r - 1;
            }
        }
    }
    for (Py_ssize_t m = 0; m < n; m++) d[m] = a[m * n + m];
    /* U = L_1^H ... L_nl^H D R_nr ... R_1. Move each L^H through D:
     * T(theta, phi)^H diag(d1, d2) = diag(d1', d2') T(theta, phi') with
     * exp(i phi') = d1 / d2, d1' = -exp(-i(theta + phi)) d2, d2' = -exp(-i theta) d2. */
    Py_ssize_t pos = nr;
    for (Py_ssize_t q = nl - 1; q >= 0; q--, pos++) {
        int64_t m = l_mode[q];
        double th = l_theta[q];
        cplx d1 = d[m], d2 = d[m + 1];
        cplx f1 = {-cos(th + l_phi[q]), sin(th + l_phi[q])};
        cplx f2 = {-cos(th), sin(th)};
        modes[pos] = m;
        theta[pos] = th;
        phi[pos] = atan2(d1.im, d1.re) - atan2(d2.im, d2.re);
        d[m] = c_mul(f1, d2);
        d[m + 1] = c_mul(f2, d2);
    }
    free(t); free(l_mode); free(l_theta); free(l_phi);
    return 0;
}

/* Reck et al., PRL 73, 58 (1994): null row by row from the bottom, from the right only.
 * Row `row` is nulled by MZIs on columns (0,1), ..., (row-1,row); rows below are already
 * zero in those columns, rows above take the same MZIs. */
static int reck(cplx *a, Py_ssize_t n, int64_t *modes, double *theta, double *phi, cplx *d) {
    Py_ssize_t pos = 0;
    cplx *t = malloc(sizeof(cplx) * 4 * (size_t)(n > 0 ? n : 1));
    if (!t) return -1;
    for (Py_ssize_t row = n - 1; row > 0; row--) {
        cplx *r = a + row * n;
        cplx carry = r[0];
        for (Py_ssize_t c = 0; c < row; c++, pos++) {
            cplx y = r[c + 1];
            right_coeffs(carry, y, &theta[pos], &phi[pos], t + 4 * c);
            r[c].re = 0.0;
            r[c].im = 0.0;
            carry = c_lin2(carry, t[4 * c + 2], y, t[4 * c + 3]);
            modes[pos] = c;
        }
        r[row] = carry;
        chain_ascending(a, n, 0, row, 0, row, t);
    }
    for (Py_ssize_t m = 0; m < n; m++) d[m] = a[m * n + m];
    free(t);
    return 0;
}

/* Propagate fields (n x k, C order) through MZIs in light order, in place. */
HOT static void apply_mzis(cplx *f, Py_ssize_t n, Py_ssize_t k, Py_ssize_t count, const int64_t *modes,
                           const double *theta, const double *phi) {
    cplx t[4];
    for (Py_ssize_t q = 0; q < count; q++) {
        cplx *up = f + modes[q] * k, *lo = up + k;
        mzi_entries(theta[q], phi[q], t);
        for (Py_ssize_t j = 0; j < k; j++) {
            cplx u = up[j], v = lo[j];
            up[j] = c_lin2(u, t[0], v, t[1]);
            lo[j] = c_lin2(u, t[2], v, t[3]);
        }
    }
    (void)n;
}

/* ------------------------------------------------------------------ Python glue */

typedef int (*kernel_fn)(cplx *, Py_ssize_t, int64_t *, double *, double *, cplx *);

static int check_len(Py_buffer *b, Py_ssize_t expected, const char *name) {
    if (b->len != expected) {
        PyErr_Format(PyExc_ValueError, "%s has %zd bytes, expected %zd", name, b->len, expected);
        return -1;
    }
    return 0;
}

/* Sizes up to 2^24 modes keep every byte count below 2^52: no overflow anywhere. */
#define MAX_MODES ((Py_ssize_t)1 << 24)

static PyObject *run_kernel(PyObject *args, kernel_fn fn) {
    Py_buffer a, modes, theta, phi, d;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "nw*w*w*w*w*", &n, &a, &modes, &theta, &phi, &d)) return NULL;
    int status = 0;
    if (n < 1 || n > MAX_MODES) {
        PyErr_Format(PyExc_ValueError, "n = %zd; allowed: 1 .. %zd", n, MAX_MODES);
        status = -2;
    } else if (check_len(&a, n * n * 16, "a") || check_len(&modes, n * (n - 1) / 2 * 8, "modes") ||
               check_len(&theta, n * (n - 1) / 2 * 8, "theta") ||
               check_len(&phi, n * (n - 1) / 2 * 8, "phi") || check_len(&d, n * 16, "d")) {
        status = -2;
    } else {
        Py_BEGIN_ALLOW_THREADS
        status = fn((cplx *)a.buf, n, (int64_t *)modes.buf, (double *)theta.buf, (double *)phi.buf,
                    (cplx *)d.buf);
        Py_END_ALLOW_THREADS
        if (status == -1) PyErr_NoMemory();
    }
    PyBuffer_Release(&a); PyBuffer_Release(&modes); PyBuffer_Release(&theta);
    PyBuffer_Release(&phi); PyBuffer_Release(&d);
    if (status != 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_clements(PyObject *self, PyObject *args) { return run_kernel(args, clements); }
static PyObject *py_reck(PyObject *self, PyObject *args) { return run_kernel(args, reck); }

/* Earliest column for each MZI after every earlier MZI on its two modes. */
static PyObject *py_asap_columns(PyObject *self, PyObject *args) {
    Py_buffer modes, cols;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "ny*w*", &n, &modes, &cols)) return NULL;
    Py_ssize_t k = modes.len / 8;
    int bad = n < 1 || n > MAX_MODES || cols.len != modes.len;
    int64_t *free_at = bad ? NULL : calloc((size_t)n, sizeof(int64_t));
    bad = bad || free_at == NULL;
    if (!bad) {
        const int64_t *m = modes.buf;
        int64_t *c = cols.buf;
        for (Py_ssize_t q = 0; q < k && !bad; q++) {
            if (m[q] < 0 || m[q] + 1 >= n) { bad = 1; break; }
            int64_t col = free_at[m[q]] > free_at[m[q] + 1] ? free_at[m[q]] : free_at[m[q] + 1];
            c[q] = col;
            free_at[m[q]] = free_at[m[q] + 1] = col + 1;
        }
    }
    free(free_at);
    PyBuffer_Release(&modes); PyBuffer_Release(&cols);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "asap_columns: bad sizes or mode out of range");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_apply_mzis(PyObject *self, PyObject *args) {
    Py_buffer f, modes, theta, phi;
    Py_ssize_t n, k;
    if (!PyArg_ParseTuple(args, "nnw*y*y*y*", &n, &k, &f, &modes, &theta, &phi)) return NULL;
    Py_ssize_t count = modes.len / 8;
    int bad = n < 1 || n > MAX_MODES || k < 0 || k > PY_SSIZE_T_MAX / 16 ||
              (k > 0 && n > f.len / (16 * k)) || /* after these, n * k * 16 cannot overflow */
              f.len != n * k * 16 || theta.len != count * 8 || phi.len != count * 8;
    const int64_t *m = modes.buf;
    for (Py_ssize_t q = 0; q < count && !bad; q++) bad = m[q] < 0 || m[q] + 1 >= n;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        apply_mzis((cplx *)f.buf, n, k, count, m, (const double *)theta.buf, (const double *)phi.buf);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&f); PyBuffer_Release(&modes); PyBuffer_Release(&theta); PyBuffer_Release(&phi);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "apply_mzis: bad sizes or mode out of range");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"apply_mzis", py_apply_mzis, METH_VARARGS,
     "apply_mzis(n, k, fields, modes, theta, phi): fields (n x k complex128, C order) <- "
     "T_K ... T_1 fields, in place."},
    {"clements", py_clements, METH_VARARGS,
     "clements(n, a, modes, theta, phi, d): Clements nulling of the C-contiguous complex128 "
     "n x n array a in place; fills modes, theta, phi (light order) and the diagonal d."},
    {"reck", py_reck, METH_VARARGS, "reck(n, a, modes, theta, phi, d): Reck nulling, as clements."},
    {"asap_columns", py_asap_columns, METH_VARARGS,
     "asap_columns(n, modes, cols): earliest column of each MZI (int64 arrays)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "Compiled kernels of optinc_compiler.decompose.", -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
