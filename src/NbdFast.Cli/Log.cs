using System.Text;

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

    public static string Escape(string text)
    {
        var builder = new StringBuilder(Math.Min(text.Length, 80));
        foreach (char c in text)
        {
            if (builder.Length >= 80)
            {
                builder.Append("...");
                break;
            }
            builder.Append(char.IsControl(c) ? '?' : c);
        }
        return builder.ToString();
    }

    private void Write(string message)
    {
        lock (_lock)
        {
            Console.Error.WriteLine($"nbdfast: {message}");
        }
    }
}
