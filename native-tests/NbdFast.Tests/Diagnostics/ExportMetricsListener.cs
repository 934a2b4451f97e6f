using System.Diagnostics.Metrics;
using NbdFast.Diagnostics;

namespace NbdFast.Tests.Diagnostics;

/// <summary>
/// A plain <see cref="MeterListener"/> on the NbdFast meter that totals what one export records: requests,
/// payload bytes, timed requests and the in-flight balance. Its callbacks allocate nothing (they run on the
/// reactor thread, whose allocations the allocation tests count). Other tests' exports are ignored, so tests
/// running in parallel do not disturb the totals.
/// </summary>
internal sealed class ExportMetricsListener : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly string _export;
    private long _requests;
    private long _bytes;
    private long _timed;
    private long _inFlight;

    public ExportMetricsListener(string export)
    {
        _export = export;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == NbdMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument, this);
            }
        };
        _listener.SetMeasurementEventCallback<long>(static (instrument, value, tags, state) => ((ExportMetricsListener)state!).OnLong(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>(static (instrument, value, tags, state) => ((ExportMetricsListener)state!).OnDouble(instrument, tags));
        _listener.Start();
    }

    public long Requests => Interlocked.Read(ref _requests);
    public long Bytes => Interlocked.Read(ref _bytes);
    public long TimedRequests => Interlocked.Read(ref _timed);
    public long InFlight => Interlocked.Read(ref _inFlight);

    private void OnLong(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (!IsMine(tags))
        {
            return;
        }
        switch (instrument.Name)
        {
            case NbdMetrics.RequestsInstrument:
                Interlocked.Add(ref _requests, value);
                break;
            case NbdMetrics.IoInstrument:
                Interlocked.Add(ref _bytes, value);
                break;
            case NbdMetrics.ActiveRequestsInstrument:
                Interlocked.Add(ref _inFlight, value);
                break;
        }
    }

    private void OnDouble(Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (instrument.Name == NbdMetrics.RequestDurationInstrument && IsMine(tags))
        {
            Interlocked.Increment(ref _timed);
        }
    }

    private bool IsMine(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            if (tag.Key == NbdMetrics.ExportTag)
            {
                return tag.Value is string name && name == _export;
            }
        }
        return false;
    }

    public void Dispose() => _listener.Dispose();
}
