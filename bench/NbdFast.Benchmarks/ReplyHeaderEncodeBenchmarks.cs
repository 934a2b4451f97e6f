using BenchmarkDotNet.Attributes;
using NbdFast.Protocol;

namespace NbdFast.Benchmarks;

/// <summary>
/// Encoding reply headers of each style into a reused send buffer, a batch of replies back to back
/// as a busy connection queues them. Results are per header.
/// </summary>
[MemoryDiagnoser]
public class ReplyHeaderEncodeBenchmarks
{
    private const int Batch = 64;
    private const uint ChunkLength = 8 + 4096;
    private readonly byte[] _buffer = new byte[Batch * NbdLimits.ExtendedReplyHeaderSize];

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch)]
    public int Simple()
    {
        Span<byte> buffer = _buffer;
        int at = 0;
        for (int i = 0; i < Batch; i++)
        {
            at += ReplyCodec.WriteSimple(buffer[at..], NbdError.None, (ulong)i);
        }
        return at;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int Structured()
    {
        Span<byte> buffer = _buffer;
        int at = 0;
        for (int i = 0; i < Batch; i++)
        {
            at += ReplyCodec.WriteStructured(buffer[at..], NbdReplyFlags.Done, NbdReplyType.OffsetData, (ulong)i, ChunkLength);
        }
        return at;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int Extended()
    {
        Span<byte> buffer = _buffer;
        int at = 0;
        for (int i = 0; i < Batch; i++)
        {
            at += ReplyCodec.WriteExtended(buffer[at..], NbdReplyFlags.Done, NbdReplyType.OffsetData, (ulong)i, (ulong)i << 16, ChunkLength);
        }
        return at;
    }
}
