using NbdFast.Devices;

namespace NbdFast.Cli.Exports;

/// <summary>Turns an <see cref="ExportSpec"/> into the device stack it describes: backing store, then the sub-range, then the snapshot overlay.</summary>
internal static class ExportOpener
{
    /// <summary>Opens the devices; throws <see cref="UsageException"/> with one line when the backing store cannot be used.</summary>
    public static (IBlockDevice Served, CopyOnWriteDevice? Snapshot) Open(ExportSpec spec)
    {
        IBlockDevice device;
        try
        {
            // A snapshot never writes its base, so the base is opened read-only even for rw exports.
            device = spec.MemorySize is long size
                ? new MemoryDevice(size)
                : FileDevice.Open(spec.Path!, readOnly: !spec.Writable || spec.Snapshot, direct: spec.Direct);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new UsageException($"{spec.Source}: {OneLine(e)}");
        }
        try
        {
            if (spec.Offset != 0 || spec.Size is not null)
            {
                device = new SliceDevice(device, spec.Offset, spec.Size, ownsInner: true);
            }
            if (!spec.Snapshot)
            {
                return (device, null);
            }
            var snapshot = new CopyOnWriteDevice(device, ownsBase: true);
            return (snapshot, snapshot);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            device.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw new UsageException($"export '{spec.Name}': {OneLine(e)}");
        }
    }

    /// <summary>An exception's message without the parameter name and "Actual value" lines argument exceptions add.</summary>
    private static string OneLine(Exception e) =>
        e is ArgumentException { ParamName: { } name } argument
            ? argument.Message.Split('\n')[0].Replace($" (Parameter '{name}')", "", StringComparison.Ordinal).Trim()
            : e.Message.Split('\n')[0].Trim();
}
