using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.ObjectPool;
using NbdFast.Transmission;

namespace NbdFast.Benchmarks;

/// <summary>
/// The per-request bookkeeping of the transmission layer: taking a request slot (pooled context plus the
/// in-flight budget) and giving it back. Runs once per request, so it must not allocate.
/// </summary>
[MemoryDiagnoser]
public class InFlightBookkeepingBenchmarks
{
    private const int Batch = 64;
    private readonly InFlightBudget _budget = new(64, 64L << 20);
    private readonly ObjectPool<RequestContext> _pool = new DefaultObjectPool<RequestContext>(new DefaultPooledObjectPolicy<RequestContext>(), 64);
    private readonly RequestContext[] _held = new RequestContext[Batch];

    [Benchmark(OperationsPerInvoke = Batch)]
    public async ValueTask AcquireAndRelease()
    {
        for (int i = 0; i < Batch; i++)
        {
            await _budget.AcquireAsync(4096, CancellationToken.None);
            _held[i] = _pool.Get();
        }
        for (int i = 0; i < Batch; i++)
        {
            _pool.Return(_held[i]);
            _budget.Release(4096);
        }
    }
}
