namespace NbdFast.Cli;

/// <summary>Minimal stderr logging: warnings always, connection lines with -v. Client text is escaped.</summary>
internal sealed class Log(int verbosity)
{
    private readonly Lock _lock = new();

    public void Info(string message)
    {
        if (verbosity > 0)
        {
            Write(message);
        }
    }

    public void Warn(string message) => Write(message);

    /// <summary>Client-supplied text made safe for a log line (bounded, no control characters).</summary>
    public static string Escape(string text) => NbdFast.Negotiation.ClientText.Echo(text);

    private void Write(string message)
    {
        lock (_lock)
        {
            Console.Error.WriteLine($"nbdfast: {message}");
        }
    }
}
