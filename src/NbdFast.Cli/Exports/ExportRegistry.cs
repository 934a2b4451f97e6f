using Microsoft.Extensions.Logging;
using NbdFast.Cli.Logging;
using NbdFast.Negotiation;

namespace NbdFast.Cli.Exports;

/// <summary>
/// The exports being served, by name. Resolves names for the handshake, counts clients per export (its
/// max-connections), discards snapshot overlays when an export's last client leaves, and swaps in a new set
/// on reload: new exports appear at once, removed ones refuse new clients and close when drained.
/// </summary>
internal sealed class ExportRegistry : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly ILogger _log;
    private readonly List<LiveExport> _retiredBusy = [];
    private Dictionary<string, LiveExport> _current = new(StringComparer.Ordinal);
    private IReadOnlyList<string> _names = [];

    private ExportRegistry(ILogger log) => _log = log;

    /// <summary>Opens every export; on a failure closes those already opened and throws <see cref="UsageException"/>.</summary>
    public static async Task<ExportRegistry> OpenAsync(IReadOnlyList<ExportSpec> specs, ILogger log)
    {
        var registry = new ExportRegistry(log);
        registry.Install(await OpenAllAsync(specs, keep: null).ConfigureAwait(false), out _);
        return registry;
    }

    /// <summary>Names offered to NBD_OPT_LIST, in configuration order.</summary>
    public IReadOnlyList<string> Names
    {
        get
        {
            lock (_lock)
            {
                return _names;
            }
        }
    }

    /// <summary>The export list as it stands, for the start-up line.</summary>
    public IReadOnlyList<ExportSpec> Specs
    {
        get
        {
            lock (_lock)
            {
                return [.. _names.Select(n => _current[n].Spec)];
            }
        }
    }

    /// <summary>The handshake's resolver: current, not retired exports only.</summary>
    public ValueTask<NbdExport?> ResolveAsync(string name, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_current.TryGetValue(name, out LiveExport? live))
            {
                return ValueTask.FromResult<NbdExport?>(null);
            }
            // A full export is refused in the handshake, where the client gets a reason (ERR_POLICY); the
            // lease taken after the handshake is what enforces the limit when two clients race for the last place.
            if (live.Spec.MaxConnections is int limit && live.Connections >= limit)
            {
                _log.ExportFull(ClientText.Echo(name), limit);
                return ValueTask.FromResult<NbdExport?>(live.Export with { UnavailableReason = $"export '{ClientText.Echo(name)}' is at its connection limit ({limit})" });
            }
            return ValueTask.FromResult<NbdExport?>(live.Export);
        }
    }

    /// <summary>
    /// Counts a client in on the export its handshake resolved. Fails when the export was removed meanwhile or
    /// already has its max-connections clients.
    /// </summary>
    public ExportLease? TryAcquire(string name, NbdExport? resolved, out ExportRefusal refusal)
    {
        lock (_lock)
        {
            if (!_current.TryGetValue(name, out LiveExport? live) || !ReferenceEquals(live.Export, resolved))
            {
                refusal = ExportRefusal.Removed;
                return null;
            }
            if (live.Spec.MaxConnections is int limit && live.Connections >= limit)
            {
                refusal = ExportRefusal.Full;
                return null;
            }
            live.Connections++;
            refusal = ExportRefusal.None;
            return new ExportLease(this, live);
        }
    }

    /// <summary>The max-connections of an export, 0 when it has none or is gone.</summary>
    public int LimitOf(string name)
    {
        lock (_lock)
        {
            return _current.TryGetValue(name, out LiveExport? live) ? live.Spec.MaxConnections ?? 0 : 0;
        }
    }

    /// <summary>Replaces the export set. Unchanged exports (same name, same settings) keep their devices and clients.</summary>
    public async Task<(int Added, int Removed, int Kept)> ReloadAsync(IReadOnlyList<ExportSpec> specs)
    {
        Dictionary<string, LiveExport> current;
        lock (_lock)
        {
            current = _current;
        }
        List<LiveExport> opened = await OpenAllAsync(specs, current).ConfigureAwait(false);
        int kept = opened.Count(e => current.TryGetValue(e.Spec.Name, out LiveExport? old) && ReferenceEquals(old, e));
        Install(opened, out List<LiveExport> toClose);
        foreach (LiveExport export in toClose)
        {
            await export.Device.DisposeAsync().ConfigureAwait(false);
        }
        return (opened.Count - kept, current.Count - kept, kept);
    }

    /// <summary>Flushes every export whose clients could write to its backing store (snapshots have nothing to keep).</summary>
    public async Task FlushAsync()
    {
        LiveExport[] exports;
        lock (_lock)
        {
            exports = [.. _current.Values, .. _retiredBusy];
        }
        foreach (LiveExport export in exports.Where(e => e.Spec.Writable && !e.Spec.Snapshot))
        {
            try
            {
                await export.Device.FlushAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or Devices.BlockDeviceException or ObjectDisposedException)
            {
                _log.FlushFailed(ClientText.Echo(export.Spec.Name), e.Message);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        LiveExport[] exports;
        lock (_lock)
        {
            exports = [.. _current.Values, .. _retiredBusy];
            _current = new(StringComparer.Ordinal);
            _retiredBusy.Clear();
            _names = [];
        }
        foreach (LiveExport export in exports)
        {
            await export.Device.DisposeAsync().ConfigureAwait(false);
        }
    }

    internal async ValueTask ReleaseAsync(LiveExport live)
    {
        bool close;
        lock (_lock)
        {
            live.Connections--;
            if (live.Connections > 0)
            {
                return;
            }
            // Nobody is using the overlay now, so no I/O can race the discard.
            live.Snapshot?.Discard();
            close = live.Retired && _retiredBusy.Remove(live);
        }
        if (close)
        {
            _log.ExportDrained(ClientText.Echo(live.Spec.Name));
            await live.Device.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task<List<LiveExport>> OpenAllAsync(IReadOnlyList<ExportSpec> specs, Dictionary<string, LiveExport>? keep)
    {
        ExportSet.CheckUniqueNames(specs);
        var opened = new List<LiveExport>(specs.Count);
        try
        {
            foreach (ExportSpec spec in specs)
            {
                if (keep is not null && keep.TryGetValue(spec.Name, out LiveExport? existing) && existing.Spec == spec)
                {
                    opened.Add(existing);
                    continue;
                }
                (Devices.IBlockDevice device, Devices.CopyOnWriteDevice? snapshot) = ExportOpener.Open(spec);
                opened.Add(new LiveExport(spec, device, snapshot));
            }
            return opened;
        }
        catch
        {
            foreach (LiveExport export in opened.Where(e => keep is null || !keep.ContainsValue(e)))
            {
                await export.Device.DisposeAsync().ConfigureAwait(false);
            }
            throw;
        }
    }

    private void Install(List<LiveExport> exports, out List<LiveExport> toClose)
    {
        toClose = [];
        lock (_lock)
        {
            var next = exports.ToDictionary(e => e.Spec.Name, StringComparer.Ordinal);
            foreach (LiveExport old in _current.Values)
            {
                if (next.TryGetValue(old.Spec.Name, out LiveExport? replacement) && ReferenceEquals(replacement, old))
                {
                    continue;
                }
                old.Retired = true;
                if (old.Connections == 0)
                {
                    toClose.Add(old);
                }
                else
                {
                    _retiredBusy.Add(old);
                }
            }
            _current = next;
            _names = [.. exports.Select(e => e.Spec.Name)];
        }
    }
}

/// <summary>Why a client could not be counted in on its export.</summary>
internal enum ExportRefusal
{
    None,
    /// <summary>A reload removed or replaced the export after the handshake resolved it.</summary>
    Removed,
    /// <summary>The export's max-connections is reached.</summary>
    Full,
}

/// <summary>One client's hold on an export; disposing it counts the client out.</summary>
internal sealed class ExportLease(ExportRegistry registry, LiveExport live) : IAsyncDisposable
{
    private int _released;

    public LiveExport Export => live;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            await registry.ReleaseAsync(live).ConfigureAwait(false);
        }
    }
}
