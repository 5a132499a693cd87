/*
 * textbook: the master-worker task farm most hand-written MPI programs use -
 * one task outstanding per worker, the master blocked in
 * MPI_Recv(MPI_ANY_SOURCE) for the next result, then a blocking MPI_Send of
 * the next task to whoever answered.  Tasks are empty (process nothing).
 *
 *   mpirun -n 4 textbook [--tasks N] [--payload BYTES]
 *
 * Prints one JSON line with the tasks per second.
 */
#include <mpi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TAG_TASK = 1, TAG_STOP = 2, TAG_RESULT = 3 };

int main(int argc, char **argv)
{
	unsigned long long ntasks = 200000;
	size_t payload = 16;
	int rank, size;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--tasks"))
			ntasks = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--payload"))
			payload = strtoull(argv[i + 1], NULL, 10);
	}
	if (size < 2) {
		MPI_Finalize();
		return 2;
	}
	char *task = calloc(1, payload ? payload : 1), result[16] = {0};

	MPI_Barrier(MPI_COMM_WORLD);
	double t0 = MPI_Wtime();
	if (rank == 0) {
		unsigned long long sent = 0, done = 0;

		for (int w = 1; w < size && sent < ntasks; w++, sent++)
			MPI_Send(task, (int)payload, MPI_BYTE, w, TAG_TASK, MPI_COMM_WORLD);
		while (done < sent) {
			MPI_Status st;

			MPI_Recv(result, sizeof(result), MPI_BYTE, MPI_ANY_SOURCE, TAG_RESULT,
			         MPI_COMM_WORLD, &st);
			done++;
			if (sent < ntasks) {
				MPI_Send(task, (int)payload, MPI_BYTE, st.MPI_SOURCE, TAG_TASK,
				         MPI_COMM_WORLD);
				sent++;
			}
		}
		double dt = MPI_Wtime() - t0;
		for (int w = 1; w < size; w++)
			MPI_Send(NULL, 0, MPI_BYTE, w, TAG_STOP, MPI_COMM_WORLD);
		printf("{\"bench\":\"textbook\",\"ranks\":%d,\"workers\":%d,\"tasks\":%llu,"
		       "\"payload\":%zu,\"elapsed_s\":%.6f,\"tasks_per_s\":%.1f}\n",
		       size, size - 1, ntasks, payload, dt, dt > 0 ? (double)ntasks / dt : 0.0);
	} else {
		for (;;) {
			MPI_Status st;

			MPI_Recv(task, (int)payload, MPI_BYTE, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
			if (st.MPI_TAG == TAG_STOP)
				break;
			MPI_Send(result, sizeof(result), MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
		}
	}
	free(task);
	MPI_Finalize();
	return 0;
}
