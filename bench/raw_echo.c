/*
 * raw_echo: the MPI limit for a dispatcher - a pipelined echo between rank 0
 * and every other rank, in plain MPI, with no dispatcher around it.
 *
 *   mpirun -n 4 raw_echo [--tasks N] [--payload BYTES] [--reply BYTES] [--window W]
 *
 * Rank 0 keeps W messages of BYTES bytes outstanding to every worker rank
 * (nonblocking sends from a ring of W buffers per worker); a worker receives
 * each (blocking MPI_Recv) and answers with REPLY bytes (default: BYTES, a
 * true echo; 16 for large payloads, as a dispatcher's result would be).
 * Rank 0 receives any reply (MPI_Recv from MPI_ANY_SOURCE) and sends that
 * worker the next message, until N round trips are done.  It prints one
 * JSON line with the round trips per second.
 */
#include <mpi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TAG_TASK = 1, TAG_STOP = 2, TAG_REPLY = 3 };

int main(int argc, char **argv)
{
	unsigned long long ntasks = 1000000;
	size_t payload = 16, reply = (size_t)-1;
	unsigned W = 16;
	int rank, size;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--tasks"))
			ntasks = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--payload"))
			payload = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--reply"))
			reply = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--window"))
			W = (unsigned)strtoul(argv[i + 1], NULL, 10);
	}
	if (reply == (size_t)-1)
		reply = payload;
	if (size < 2 || W < 1) {
		if (rank == 0)
			fprintf(stderr, "raw_echo: needs at least 2 ranks and W >= 1\n");
		MPI_Finalize();
		return 2;
	}
	int nw = size - 1;
	size_t big = payload > reply ? payload : reply;
	char *rbuf = calloc(1, big ? big : 1);

	MPI_Barrier(MPI_COMM_WORLD);
	double t0 = MPI_Wtime();
	if (rank == 0) {
		/* per worker: a ring of W send buffers and their requests */
		char *sbuf = calloc((size_t)nw * W, payload ? payload : 1);
		MPI_Request *req = malloc(sizeof(*req) * (size_t)nw * W);
		unsigned *head = calloc((size_t)nw, sizeof(*head));
		unsigned long long sent = 0, done = 0;

		for (size_t k = 0; k < (size_t)nw * W; k++)
			req[k] = MPI_REQUEST_NULL;
		for (unsigned k = 0; k < W; k++)
			for (int w = 0; w < nw && sent < ntasks; w++, sent++)
				MPI_Isend(sbuf + ((size_t)w * W + k) * payload, (int)payload,
				          MPI_BYTE, w + 1, TAG_TASK, MPI_COMM_WORLD,
				          &req[(size_t)w * W + k]);
		while (done < ntasks) {
			MPI_Status st;

			MPI_Recv(rbuf, (int)reply, MPI_BYTE, MPI_ANY_SOURCE, TAG_REPLY,
			         MPI_COMM_WORLD, &st);
			done++;
			if (sent < ntasks) {
				int w = st.MPI_SOURCE - 1;
				size_t k = (size_t)w * W + head[w];

				/* the oldest message to w was answered: its buffer is free */
				MPI_Wait(&req[k], MPI_STATUS_IGNORE);
				MPI_Isend(sbuf + k * payload, (int)payload, MPI_BYTE, w + 1,
				          TAG_TASK, MPI_COMM_WORLD, &req[k]);
				head[w] = (head[w] + 1) % W;
				sent++;
			}
		}
		double dt = MPI_Wtime() - t0;
		MPI_Waitall(nw * (int)W, req, MPI_STATUSES_IGNORE);
		for (int w = 0; w < nw; w++)
			MPI_Send(NULL, 0, MPI_BYTE, w + 1, TAG_STOP, MPI_COMM_WORLD);
		printf("{\"bench\":\"raw_echo\",\"ranks\":%d,\"workers\":%d,\"tasks\":%llu,"
		       "\"payload\":%zu,\"reply\":%zu,\"window\":%u,\"elapsed_s\":%.6f,"
		       "\"tasks_per_s\":%.1f}\n",
		       size, nw, ntasks, payload, reply, W, dt, dt > 0 ? (double)ntasks / dt : 0.0);
		free(sbuf);
		free(req);
		free(head);
	} else {
		char *out = calloc(1, reply ? reply : 1);

		for (;;) {
			MPI_Status st;

			MPI_Recv(rbuf, (int)payload, MPI_BYTE, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
			if (st.MPI_TAG == TAG_STOP)
				break;
			MPI_Send(out, (int)reply, MPI_BYTE, 0, TAG_REPLY, MPI_COMM_WORLD);
		}
		free(out);
	}
	free(rbuf);
	MPI_Finalize();
	return 0;
}
