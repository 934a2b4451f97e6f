using BenchmarkDotNet.Running;

namespace NbdFast.Benchmarks;

/// <summary>Entry point: pick benchmarks with --filter, e.g. <c>--filter '*Request*' --job short</c>.</summary>
public static class Program
{
    public static void Main(string[] args) =>
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
