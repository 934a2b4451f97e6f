using BenchmarkDotNet.Attributes;
using NbdFast.Protocol;

namespace NbdFast.Benchmarks;

/// <summary>Encoding the option replies a client sees most during negotiation: NBD_INFO_EXPORT and NBD_REP_SERVER.</summary>
[MemoryDiagnoser]
public class OptionReplyEncodeBenchmarks
{
    private const NbdTransmissionFlags Flags =
        NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua |
        NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.CanMultiConn;

    private readonly byte[] _buffer = new byte[NbdLimits.OptionReplyHeaderSize + 4 + 2 * NbdLimits.MaxStringLength];

    [Benchmark(Baseline = true)]
    public int InfoExport() =>
        HandshakeCodec.WriteInfoExport(_buffer, (uint)NbdOption.Go, 1UL << 30, Flags);

    [Benchmark]
    public int Server() =>
        HandshakeCodec.WriteServer(_buffer, (uint)NbdOption.List, "disk", "a 1 GiB RAM disk");
}
