using NbdFast.Devices;

namespace NbdFast.Cli.Exports;

/// <summary>
/// An export that is open and may be served: its device stack and how many clients use it. Only
/// <see cref="ExportRegistry"/> changes it, under its lock.
/// </summary>
internal sealed class LiveExport(ExportSpec spec, IBlockDevice device, CopyOnWriteDevice? snapshot)
{
    public ExportSpec Spec { get; } = spec;

    /// <summary>What the resolver hands to the handshake and the session serves.</summary>
    public NbdExport Export { get; } = new(device, ReadOnly: !spec.ClientsMayWrite, spec.Description, spec.TlsOnly);

    /// <summary>The copy-on-write overlay, discarded whenever the last client leaves.</summary>
    public CopyOnWriteDevice? Snapshot { get; } = snapshot;

    /// <summary>Clients currently served.</summary>
    public int Connections { get; set; }

    /// <summary>Removed by a reload: refuses new clients, closed when the last one leaves.</summary>
    public bool Retired { get; set; }

    public IBlockDevice Device => Export.Device;
}
