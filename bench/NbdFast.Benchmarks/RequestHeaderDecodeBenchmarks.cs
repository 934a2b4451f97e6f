using BenchmarkDotNet.Attributes;
using NbdFast.Protocol;

namespace NbdFast.Benchmarks;

/// <summary>
/// Decoding request headers as the transmission parser does: a receive buffer holding a batch of
/// back-to-back headers, read one after another. Results are per header.
/// </summary>
[MemoryDiagnoser]
public class RequestHeaderDecodeBenchmarks
{
    private const int Batch = 64;
    private readonly byte[] _compact = new byte[Batch * NbdLimits.RequestHeaderSize];
    private readonly byte[] _extended = new byte[Batch * NbdLimits.ExtendedRequestHeaderSize];

    [GlobalSetup]
    public void Setup()
    {
        for (int i = 0; i < Batch; i++)
        {
            var request = new NbdRequest(NbdCommandFlags.Fua, NbdCommand.Write, (ulong)i, (ulong)i << 16, 64 * 1024);
            RequestHeaderCodec.Write(_compact.AsSpan(i * NbdLimits.RequestHeaderSize), request, extended: false);
            RequestHeaderCodec.Write(_extended.AsSpan(i * NbdLimits.ExtendedRequestHeaderSize), request, extended: true);
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch)]
    public ulong Compact() => DecodeAll(_compact, extended: false);

    [Benchmark(OperationsPerInvoke = Batch)]
    public ulong Extended() => DecodeAll(_extended, extended: true);

    // Folds every decoded field into the result so the JIT cannot drop any of the work.
    private static ulong DecodeAll(ReadOnlySpan<byte> buffer, bool extended)
    {
        int size = RequestHeaderCodec.HeaderSize(extended);
        ulong sum = 0;
        for (int at = 0; at < buffer.Length; at += size)
        {
            if (!RequestHeaderCodec.TryRead(buffer[at..], extended, out NbdRequest request))
            {
                throw new InvalidOperationException("bad magic in benchmark input");
            }
            sum += request.Cookie ^ request.Offset ^ request.Length ^ (ulong)request.Command ^ (ulong)request.Flags;
        }
        return sum;
    }
}
