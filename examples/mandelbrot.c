/*
 * mandelbrot - the gpudispatch demo: a Mandelbrot image rendered tile by tile
 * by the workers, with the dashboard on, written as a PNG in which every tile
 * is tinted with the colour of the worker that drew it, and a legend printed.
 *
 *   mpirun -n 4 ./mandelbrot -o mandelbrot.png
 *
 * Options: -o FILE (mandelbrot.png)  -W WIDTH (1200)  -H HEIGHT (900)
 *          -t TILE (75)  -i MAX_ITER (1500)  -d DELAY_MS per tile (0)
 *          -u auto|tui|text|none (auto)
 *
 * Rank 0's generator hands out tiles; each worker's process() computes the
 * iteration counts of its tile and returns them; on_success pastes them into
 * the image, written as a PNG compressed with zlib.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "gpudispatch_ui.h"

typedef struct tile_task {
	uint32_t x, y, w, h; /* the tile, in pixels */
	uint32_t width, height, max_iter, delay_ms;
	double cx, cy, scale; /* the view: centre and units per pixel */
} tile_task;

typedef struct demo {
	tile_task view;
	uint32_t tile, nx, ny, next;
	uint16_t *iters; /* width * height */
	int *owner;      /* per tile: the worker that drew it, -1 = none */
	int n_workers;
	uint64_t *tiles_of; /* per worker */
	char (*host_of)[64];
	int *gpu_of;
} demo;

/* ------------------------------------------------------------ the worker */

static int process(gd_worker *w, const gd_task *t, gd_result *r)
{
	tile_task tt;
	uint16_t *out;

	(void)w;
	if (t->len != sizeof(tt))
		return gd_result_error(r, "task of %zu bytes, expected %zu", t->len, sizeof(tt));
	memcpy(&tt, t->data, sizeof(tt));
	out = gd_result_reserve(r, (size_t)tt.w * tt.h * sizeof(uint16_t));
	if (!out)
		return gd_result_error(r, "out of memory for a %ux%u tile", tt.w, tt.h);
	for (uint32_t j = 0; j < tt.h; j++) {
		double ci = tt.cy + ((double)(tt.y + j) - tt.height / 2.0) * tt.scale;

		for (uint32_t i = 0; i < tt.w; i++) {
			double cr = tt.cx + ((double)(tt.x + i) - tt.width / 2.0) * tt.scale;
			double zr = 0, zi = 0;
			uint32_t n = 0;

			while (n < tt.max_iter && zr * zr + zi * zi <= 4.0) {
				double nz = zr * zr - zi * zi + cr;

				zi = 2 * zr * zi + ci;
				zr = nz;
				n++;
			}
			out[j * tt.w + i] = (uint16_t)n;
		}
	}
	if (tt.delay_ms) /* so that the dashboard has something to show */
		nanosleep(&(struct timespec){.tv_sec = tt.delay_ms / 1000,
		                             .tv_nsec = (long)(tt.delay_ms % 1000) * 1000000L},
		          NULL);
	return 0;
}

static const gd_worker_class mandel_class = {.name = "mandelbrot", .process = process};

/* ------------------------------------------------------------- rank 0 */

static int gen(void *state, gd_buf *b)
{
	demo *d = state;
	tile_task tt = d->view;

	if (d->next >= d->nx * d->ny)
		return 0;
	tt.x = (d->next % d->nx) * d->tile;
	tt.y = (d->next / d->nx) * d->tile;
	tt.w = tt.x + d->tile > tt.width ? tt.width - tt.x : d->tile;
	tt.h = tt.y + d->tile > tt.height ? tt.height - tt.y : d->tile;
	d->next++;
	return gd_buf_set(b, &tt, sizeof(tt)) ? -1 : 1;
}

static void on_success(void *user, const gd_event *ev)
{
	demo *d = user;
	tile_task tt;
	const uint16_t *in = ev->data;

	if (ev->task_len != sizeof(tt))
		return;
	memcpy(&tt, ev->task_data, sizeof(tt));
	if (ev->len != (size_t)tt.w * tt.h * sizeof(uint16_t))
		return;
	for (uint32_t j = 0; j < tt.h; j++)
		memcpy(d->iters + (size_t)(tt.y + j) * tt.width + tt.x, in + (size_t)j * tt.w,
		       tt.w * sizeof(uint16_t));
	d->owner[(tt.y / d->tile) * d->nx + tt.x / d->tile] = ev->worker_id;
	if (ev->worker_id >= 0 && ev->worker_id < d->n_workers) {
		const gd_worker_stats *ws = &ev->stats->workers[ev->worker_id];

		d->tiles_of[ev->worker_id]++;
		snprintf(d->host_of[ev->worker_id], sizeof(d->host_of[0]), "%s", ws->host);
		d->gpu_of[ev->worker_id] = ws->gpu.index;
	}
}

/* ------------------------------------------------------------ colours */

static const struct {
	const char *name;
	uint8_t r, g, b;
} palette[] = {
        {"orange", 255, 140, 0},   {"sky blue", 60, 160, 255}, {"green", 60, 200, 80},
        {"magenta", 230, 60, 200}, {"yellow", 240, 220, 40},   {"red", 230, 50, 50},
        {"cyan", 40, 220, 220},    {"violet", 150, 90, 255},   {"lime", 170, 255, 60},
        {"pink", 255, 150, 180},   {"teal", 0, 150, 140},      {"brown", 170, 110, 60},
};
#define N_PALETTE (sizeof(palette) / sizeof(palette[0]))

static void pixel(const demo *d, uint32_t x, uint32_t y, uint8_t *rgb)
{
	int w = d->owner[(y / d->tile) * d->nx + x / d->tile];
	uint16_t n = d->iters[(size_t)y * d->view.width + x];
	double t, k;
	int edge = x % d->tile == 0 || y % d->tile == 0;

	if (w < 0) { /* never drawn (a failed tile): grey */
		rgb[0] = rgb[1] = rgb[2] = 64;
		return;
	}
	if (n >= d->view.max_iter) {
		k = 0.12; /* inside the set: the worker's colour, very dark */
	} else {
		t = log((double)n + 1) / log((double)d->view.max_iter + 1);
		k = 0.2 + 0.8 * pow(t, 0.7);
	}
	if (edge)
		k *= 0.6; /* faint tile borders */
	rgb[0] = (uint8_t)(palette[w % N_PALETTE].r * k);
	rgb[1] = (uint8_t)(palette[w % N_PALETTE].g * k);
	rgb[2] = (uint8_t)(palette[w % N_PALETTE].b * k);
}

/* ------------------------------------------------------------- PNG */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int chunk(FILE *f, const char *type, const uint8_t *data, size_t len)
{
	uint8_t hdr[8], tail[4];
	uint32_t crc;

	put32(hdr, (uint32_t)len);
	memcpy(hdr + 4, type, 4);
	crc = (uint32_t)crc32(0, hdr + 4, 4);
	if (len) /* crc32() of NULL is its initial value, not an update */
		crc = (uint32_t)crc32(crc, data, (uInt)len);
	put32(tail, crc);
	return fwrite(hdr, 1, 8, f) != 8 || (len && fwrite(data, 1, len, f) != len) ||
	       fwrite(tail, 1, 4, f) != 4;
}

/* An 8-bit RGB PNG, its rows filtered (Sub) and compressed by zlib. */
static int write_png(const char *path, const demo *d)
{
	uint32_t W = d->view.width, H = d->view.height;
	size_t stride = 1 + (size_t)W * 3, raw_len = (size_t)H * stride;
	uint8_t *raw = malloc(raw_len), *z = NULL, ihdr[13];
	uLongf zl = compressBound((uLong)raw_len);
	FILE *f;
	int rc = -1;

	if (!raw || raw_len > UINT32_MAX || !(z = malloc(zl)))
		goto out;
	for (uint32_t y = 0; y < H; y++) {
		uint8_t *row = raw + (size_t)y * stride;

		for (uint32_t x = 0; x < W; x++)
			pixel(d, x, y, row + 1 + (size_t)x * 3);
		/* filter Sub: each byte minus the one a pixel to its left (the
		 * tiles are flat runs of a colour, which then compress to zeros) */
		row[0] = 1;
		for (size_t i = stride - 1; i > 3; i--)
			row[i] = (uint8_t)(row[i] - row[i - 3]);
	}
	if (compress2(z, &zl, raw, (uLong)raw_len, Z_BEST_COMPRESSION) != Z_OK)
		goto out;

	put32(ihdr, W);
	put32(ihdr + 4, H);
	ihdr[8] = 8;  /* bit depth */
	ihdr[9] = 2;  /* colour type: RGB */
	ihdr[10] = 0; /* deflate */
	ihdr[11] = 0; /* adaptive filtering */
	ihdr[12] = 0; /* no interlace */
	f = fopen(path, "wb");
	if (!f)
		goto out;
	rc = fwrite("\x89PNG\r\n\x1a\n", 1, 8, f) != 8 || chunk(f, "IHDR", ihdr, 13) ||
	     chunk(f, "IDAT", z, (size_t)zl) || chunk(f, "IEND", NULL, 0);
	if (fclose(f))
		rc = -1;
out:
	free(raw);
	free(z);
	return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
	fprintf(stderr, "usage: mpirun -n N mandelbrot [-o FILE] [-W WIDTH] [-H HEIGHT] [-t TILE] "
	                "[-i MAX_ITER] [-d DELAY_MS] [-u auto|tui|text|none]\n");
}

int main(int argc, char **argv)
{
	demo d = {0};
	const char *out = "mandelbrot.png";
	gd_config cfg;
	gd_callbacks cb = {.size = sizeof(cb)};
	gd_stats stats = GD_STATS_INIT;
	gd_ui_options ui;
	int rank, rc, opt, status = 0;

	gd_config_init(&cfg, sizeof(cfg));
	gd_ui_options_init(&ui, sizeof(ui));
	d.view =
	        (tile_task){.width = 1200, .height = 900, .max_iter = 1500, .cx = -0.65, .cy = 0.0};
	d.tile = 75;
	while ((opt = getopt(argc, argv, "o:W:H:t:i:d:u:h")) != -1) {
		switch (opt) {
		case 'o':
			out = optarg;
			break;
		case 'W':
			d.view.width = (uint32_t)atoi(optarg);
			break;
		case 'H':
			d.view.height = (uint32_t)atoi(optarg);
			break;
		case 't':
			d.tile = (uint32_t)atoi(optarg);
			break;
		case 'i':
			d.view.max_iter = (uint32_t)atoi(optarg);
			break;
		case 'd':
			d.view.delay_ms = (uint32_t)atoi(optarg);
			break;
		case 'u':
			ui.mode = !strcmp(optarg, "tui")    ? GD_UI_TUI
			          : !strcmp(optarg, "text") ? GD_UI_TEXT
			          : !strcmp(optarg, "none") ? GD_UI_NONE
			                                    : GD_UI_AUTO;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (d.view.width < 8 || d.view.width > 20000 || d.view.height < 8 ||
	    d.view.height > 20000 || d.tile < 8 || d.view.max_iter < 1 || d.view.max_iter > 65535) {
		fprintf(stderr,
		        "mandelbrot: width/height 8..20000, tile >= 8, max_iter 1..65535\n");
		return 2;
	}
	d.view.scale = 3.2 / d.view.width; /* the whole set across */
	if (3.2 / d.view.width * d.view.height < 2.4)
		d.view.scale = 2.4 / d.view.height;
	d.nx = (d.view.width + d.tile - 1) / d.tile;
	d.ny = (d.view.height + d.tile - 1) / d.tile;

	if (gd_init(&argc, &argv))
		return 1;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &d.n_workers);
	d.n_workers--;
	if (rank == 0 && d.n_workers > 0) {
		d.iters = calloc((size_t)d.view.width * d.view.height, sizeof(uint16_t));
		d.owner = malloc((size_t)d.nx * d.ny * sizeof(int));
		d.tiles_of = calloc((size_t)d.n_workers, sizeof(uint64_t));
		d.host_of = calloc((size_t)d.n_workers, sizeof(d.host_of[0]));
		d.gpu_of = calloc((size_t)d.n_workers, sizeof(int));
		if (!d.iters || !d.owner || !d.tiles_of || !d.host_of || !d.gpu_of) {
			fprintf(stderr, "mandelbrot: out of memory\n");
			MPI_Abort(MPI_COMM_WORLD, 1);
		}
		for (uint32_t i = 0; i < d.nx * d.ny; i++)
			d.owner[i] = -1;
	}
	cfg.total_hint = (uint64_t)d.nx * d.ny;
	cfg.window = 2;
	cb.on_success = on_success;
	cb.user = &d;

	rc = gd_ui_run(MPI_COMM_WORLD, &mandel_class, gen, &d, &cb, &cfg, &ui, &stats);
	if (rank == 0) {
		if (rc && rc != GD_EINTR) {
			fprintf(stderr, "mandelbrot: %s\n", gd_strerror(rc));
			status = rc == GD_ENOWORKER ? 2 : 1;
		} else if (write_png(out, &d)) {
			perror(out);
			status = 1;
		} else {
			/* under mpirun isatty(1) is true even in a batch log;
			 * /dev/tty opens only when started from a terminal */
			int tfd = open("/dev/tty", O_RDONLY | O_CLOEXEC);
			int tty = isatty(1) && tfd >= 0 && !getenv("NO_COLOR");

			if (tfd >= 0)
				close(tfd);

			printf("\nMandelbrot %ux%u, %u tiles of %u px, drawn by %d workers in %.1f "
			       "s:\n",
			       d.view.width, d.view.height, d.nx * d.ny, d.tile, d.n_workers,
			       stats.elapsed_s);
			for (int w = 0; w < d.n_workers; w++) {
				if (tty) /* a swatch of the worker's colour */
					printf("  \033[38;2;%d;%d;%dm##\033[0m",
					       palette[w % N_PALETTE].r, palette[w % N_PALETTE].g,
					       palette[w % N_PALETTE].b);
				else
					printf("  ");
				printf(" worker %-3d %-9s %4llu tiles  host %s  %s", w,
				       palette[w % N_PALETTE].name,
				       (unsigned long long)d.tiles_of[w],
				       d.host_of[w][0] ? d.host_of[w] : "-",
				       d.gpu_of[w] >= 0 ? "GPU " : "CPU");
				if (d.gpu_of[w] >= 0)
					printf("%d", d.gpu_of[w]);
				printf("\n");
			}
			printf("Image written to %s (each tile tinted by the worker that drew "
			       "it)\n",
			       out);
			status = rc == GD_EINTR ? 3 : stats.failed ? 1 : 0;
		}
	}
	gd_stats_free(&stats);
	free(d.iters);
	free(d.owner);
	free(d.tiles_of);
	free(d.host_of);
	free(d.gpu_of);
	gd_finalize();
	return status;
}
