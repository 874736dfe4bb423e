/* bench_main.c: runs tools/bench_local.c standalone (until `pendulum bench-local` is linked):
 *   bench_local --model F.gguf [--parallel N] ... (see tools/bench_local.c) */
int pd_bench_local_cli(int argc, char **argv);

int main(int argc, char **argv)
{
    return pd_bench_local_cli(argc, argv);
}
