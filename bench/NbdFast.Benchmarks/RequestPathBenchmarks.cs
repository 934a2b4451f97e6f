using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using NbdFast.Devices;
using NbdFast.Diagnostics;
using NbdFast.Negotiation;
using NbdFast.Protocol;
using NbdFast.Transmission;

namespace NbdFast.Benchmarks;

/// <summary>
/// One whole request through the transport-independent path every transport shares: decode the header,
/// validate it against the negotiated export, run it on a memory device and encode the reply. Only the
/// socket itself is left out. Simple and structured replies, 4 KiB reads and writes; the metrics calls the
/// transports make around each request, with nobody listening and with a <see cref="MeterListener"/> that
/// receives every measurement (either way: 0 B allocated per request).
/// </summary>
[MemoryDiagnoser]
public class RequestPathBenchmarks
{
    private const int Batch = 64;
    private readonly byte[] _headers = new byte[Batch * NbdLimits.RequestHeaderSize];
    private readonly RequestContext _context = new();
    private MemoryDevice _device = null!;
    private RequestExecutor _executor = null!;
    private TransmissionContext _transmission = null!;

    [Params(NbdCommand.Read, NbdCommand.Write)]
    public NbdCommand Command { get; set; }

    [Params(false, true)]
    public bool Structured { get; set; }

    [Params(false, true)]
    public bool Observed { get; set; }

    private MeterListener? _listener;
    private long _measurements;

    [GlobalSetup]
    public void Setup()
    {
        _device = new MemoryDevice(64L << 20);
        _device.Write(0, new byte[64L << 20]);
        var features = new NegotiatedFeatures { FixedNewstyle = true, StructuredReplies = Structured };
        NbdTransmissionFlags flags = TransmissionFlagsBuilder.For(_device, readOnly: false, features, "");
        _transmission = new TransmissionContext(_device, flags, Structured, extendedHeaders: false, allocationContext: false, ServeOptions.Default);
        _executor = new RequestExecutor(_transmission);
        for (int i = 0; i < Batch; i++)
        {
            var request = new NbdRequest(NbdCommandFlags.None, Command, (ulong)i, (ulong)i * 4096 * 7 % (60 << 20), 4096);
            RequestHeaderCodec.Write(_headers.AsSpan(i * NbdLimits.RequestHeaderSize), request, extended: false);
        }
        _context.RentBuffer(ReplyEncoder.Headroom + 4096);
        if (Observed)
        {
            _listener = new MeterListener
            {
                InstrumentPublished = (instrument, listener) =>
                {
                    if (instrument.Meter.Name == NbdMetrics.MeterName)
                    {
                        listener.EnableMeasurementEvents(instrument, this);
                    }
                },
            };
            _listener.SetMeasurementEventCallback<long>(static (_, value, _, state) => ((RequestPathBenchmarks)state!)._measurements += value);
            _listener.SetMeasurementEventCallback<double>(static (_, _, _, state) => ((RequestPathBenchmarks)state!)._measurements++);
            _listener.Start();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _listener?.Dispose();
        if (Observed && _measurements == 0)
        {
            throw new InvalidOperationException("The listener saw no measurement: the benchmark measured nothing.");
        }
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public async ValueTask<int> DecodeValidateExecuteReply()
    {
        int replyBytes = 0;
        for (int i = 0; i < Batch; i++)
        {
            RequestHeaderCodec.TryRead(_headers.AsSpan(i * NbdLimits.RequestHeaderSize), extended: false, out NbdRequest request);
            Verdict verdict = RequestValidator.Validate(request, _transmission);
            if (!verdict.IsOk)
            {
                throw new InvalidOperationException(verdict.Message);
            }
            long received = _transmission.Metrics.RequestReceived();
            bool started = _transmission.Metrics.RequestStarted(received);
            _context.Request = request;
            ReadOnlyMemory<byte> reply = await _executor.ExecuteAsync(_context);
            replyBytes += reply.Length;
            _transmission.Metrics.RequestFinished(request, _context.Outcome, received, started, answered: true);
        }
        return replyBytes;
    }
}
