using NbdFast.Devices;

namespace NbdFast;

/// <summary>An export a resolver hands out: the device to serve and how.</summary>
/// <param name="Device">The block device.</param>
/// <param name="ReadOnly">Serve read-only (NBD_FLAG_READ_ONLY); the default, as in <see cref="NbdConnection.ServeAsync(IBlockDevice, bool, ServeOptions?, CancellationToken)"/>.</param>
/// <param name="Description">Shown by NBD_OPT_LIST and NBD_INFO_DESCRIPTION.</param>
/// <param name="TlsOnly">With <see cref="NbdTlsMode.Optional"/> (SELECTIVETLS): hidden and refused until the client starts TLS.</param>
public sealed record NbdExport(IBlockDevice Device, bool ReadOnly = true, string? Description = null, bool TlsOnly = false)
{
    /// <summary>
    /// When set, NBD_OPT_GO on this export is refused with NBD_REP_ERR_POLICY and this message (and
    /// NBD_OPT_EXPORT_NAME closes the connection), while LIST and INFO still describe it: for an export that is
    /// temporarily unavailable, e.g. at its connection limit.
    /// </summary>
    public string? UnavailableReason { get; init; }
}

/// <summary>
/// Looks up an export by the name a client asked for; returns null for an unknown name (the client then
/// gets NBD_REP_ERR_UNKNOWN and may try another).
/// </summary>
public delegate ValueTask<NbdExport?> NbdExportResolver(string name, CancellationToken cancellationToken);
